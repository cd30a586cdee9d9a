//go:build !unix

package filetransfer

// oNoFollow is not available here; O_EXCL still refuses existing links.
const oNoFollow = 0
