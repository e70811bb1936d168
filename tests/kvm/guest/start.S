/* Entry points of the test guest.
 *   start64:    64-bit entry (ELF e_entry, or bzImage offset 0x200),
 *               long mode on the VMM's page tables, %rsi = boot_params.
 *   pvh_start:  PVH entry (32-bit protected mode, paging off),
 *               %ebx = hvm_start_info; builds its own page tables.
 *   mb_start:   multiboot entry (32-bit protected mode, paging off),
 *               %eax = 0x2BADB002, %ebx = the multiboot information; it
 *               keeps the entry state for test=mb-entry, then as PVH.
 * Built with -DMULTIBOOT_HEADER=1 (an ELF: flags 0 and 1) or =2 (the
 * a.out kludge's address fields too, for the flat binary), the .head
 * padding starts with a multiboot header; otherwise it holds none, so
 * that the other images do not boot as multiboot. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS_ELF 0x00000003 /* page-aligned modules, memory information */
#define MB_FLAGS_AOUT 0x00010003

	.section .head, "a"
head_start:
#if MULTIBOOT_HEADER == 1
	.align 4
	.long MB_MAGIC, MB_FLAGS_ELF, -(MB_MAGIC + MB_FLAGS_ELF)
#elif MULTIBOOT_HEADER == 2
	.align 4
mb_header:
	.long MB_MAGIC, MB_FLAGS_AOUT, -(MB_MAGIC + MB_FLAGS_AOUT)
	.long mb_header     /* header_addr */
	.long head_start    /* load_addr: the image starts here */
	.long _load_end     /* load_end_addr: the end of the file */
	.long _bss_end      /* bss_end_addr */
	.long mb_start      /* entry_addr */
#endif
	.fill 0x200 - (. - head_start), 1, 0

	.section .text.start64, "ax"
	.code64
	.globl start64
start64:
	lea stack_top(%rip), %rsp
	mov %rsi, %rdi
	xor %esi, %esi          /* boot kind 0: boot_params */
	call guest_main
1:	cli
	hlt
	jmp 1b

	.section .text.pvh, "ax"
	.code32
	.globl mb_start
mb_start:
	/* No stack yet: multiboot leaves %esp undefined. */
	mov %eax, mb_entry_eax
	mov %ebx, mb_entry_ebx
	mov %cr0, %ecx
	mov %ecx, mb_entry_cr0
	lea stack_top, %esp
	pushfl
	popl mb_entry_eflags
	mov %ebx, %esi
	mov $2, %ebp            /* boot kind 2: multiboot */
	jmp to_long_mode

	.globl pvh_start
pvh_start:
	mov %ebx, %esi
	mov $1, %ebp            /* boot kind 1: hvm_start_info */
to_long_mode:
	/* Identity-map 4 GiB with 2 MiB pages (four page directories). */
	lea pvh_pd, %edi
	xor %eax, %eax
	mov $0x83, %eax         /* present, writable, 2 MiB */
	xor %ecx, %ecx
2:	mov %eax, (%edi,%ecx,8)
	movl $0, 4(%edi,%ecx,8)
	add $0x200000, %eax
	inc %ecx
	cmp $2048, %ecx
	jne 2b
	lea pvh_pdpt, %edi
	lea pvh_pd, %eax
	or $3, %eax
	xor %ecx, %ecx
5:	mov %eax, (%edi,%ecx,8)
	add $4096, %eax
	inc %ecx
	cmp $4, %ecx
	jne 5b
	lea pvh_pml4, %edi
	lea pvh_pdpt, %eax
	or $3, %eax
	mov %eax, (%edi)
	mov %edi, %cr3
	mov %cr4, %eax
	or $0x20, %eax          /* PAE */
	mov %eax, %cr4
	mov $0xc0000080, %ecx   /* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax    /* PG | PE */
	mov %eax, %cr0
	lgdt pvh_gdt_desc
	ljmp $0x08, $pvh_long
	.code64
pvh_long:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	lea stack_top(%rip), %rsp
	mov %esi, %edi
	mov %ebp, %esi          /* boot kind */
	call guest_main
3:	cli
	hlt
	jmp 3b

	.section .rodata
	.align 16
pvh_gdt:
	.quad 0
	.quad 0x00af9b000000ffff /* 64-bit code */
	.quad 0x00cf93000000ffff /* data */
pvh_gdt_desc:
	.word pvh_gdt_desc - pvh_gdt - 1
	.long pvh_gdt

	.section .bss
	.globl mb_entry_eax, mb_entry_ebx, mb_entry_cr0, mb_entry_eflags
	.align 4
mb_entry_eax: .long 0
mb_entry_ebx: .long 0
mb_entry_cr0: .long 0
mb_entry_eflags: .long 0
	.align 4096
pvh_pml4: .fill 4096, 1, 0
pvh_pdpt: .fill 4096, 1, 0
pvh_pd:   .fill 4 * 4096, 1, 0
	.align 16
stack:    .fill 16384, 1, 0
stack_top:

/* Real-mode trampoline for the SMP test: each AP starts here (copied to
 * 0x70000, SIPI vector 0x70), counts itself in and halts. */
	.section .rodata
	.globl ap_trampoline, ap_trampoline_end
	.code16
ap_trampoline:
	cli
	mov $0x7100, %ax         /* counters at 0x71000 */
	mov %ax, %ds
	mov $1, %eax
	cpuid
	shr $24, %ebx
	lock btsl %ebx, 4        /* bitmap of APIC IDs that came up */
	lock incl 0              /* AP counter */
4:	hlt
	jmp 4b
ap_trampoline_end:
	.code64
	.section .note.GNU-stack, "", @progbits
