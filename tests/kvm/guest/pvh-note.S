/* The PVH ELF note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18). */
	.section .note.pvh, "a", @note
	.align 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.long pvh_start

	.section .note.GNU-stack, "", @progbits
