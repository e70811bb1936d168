/*
 * The guest-physical address map of an x86_64 Casulo VM.
 *
 *   0x000500  GDT                      0x006000  PVH start_info + memmap
 *   0x007000  boot_params (zero page)  0x008ff0  initial stack (grows down)
 *   0x009000  PML4, 0x00a000 PDPT, 0x00b000-0x00efff four PDs (2 MiB pages
 *             identity-mapping the first 4 GiB)
 *   0x010000  multiboot information, memory map, modules and their strings
 *   0x020000  kernel command line
 *   0x09fc00  EBDA (reserved)          0x0e0000  ACPI tables, RSDP first
 *   0x0ffff0  the reset vector (reset-vector.h)
 *   0x100000  RAM continues; kernels load at their preferred address
 *   3 GiB .. 4 GiB  the MMIO hole: virtio-mmio devices, IOAPIC, LAPIC,
 *             KVM's TSS and identity-map pages
 *   4 GiB ..  RAM above the hole when the guest has more than 3 GiB
 */
#ifndef CASULO_VMM_ARCH_X86_LAYOUT_H
#define CASULO_VMM_ARCH_X86_LAYOUT_H

#define LAYOUT_GDT_ADDR 0x500ULL
#define LAYOUT_IDT_ADDR 0x520ULL
#define LAYOUT_PVH_INFO_ADDR 0x6000ULL
#define LAYOUT_PVH_MEMMAP_ADDR 0x6040ULL
#define LAYOUT_PVH_MEMMAP_MAX 32
#define LAYOUT_PVH_MODLIST_ADDR 0x6800ULL
#define LAYOUT_ZERO_PAGE_ADDR 0x7000ULL
#define LAYOUT_BOOT_STACK 0x8ff0ULL
#define LAYOUT_PML4_ADDR 0x9000ULL
#define LAYOUT_PDPT_ADDR 0xa000ULL
#define LAYOUT_PD_ADDR 0xb000ULL /* four pages: 0xb000-0xefff */
#define LAYOUT_MULTIBOOT_INFO_ADDR 0x10000ULL
#define LAYOUT_MULTIBOOT_INFO_SIZE 0x10000ULL /* up to the command line */
#define LAYOUT_CMDLINE_ADDR 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL /* up to the next fixed object */
#define LAYOUT_EBDA_ADDR 0x9fc00ULL
#define LAYOUT_ACPI_ADDR 0xe0000ULL    /* RSDP here; the BIOS area Linux scans */
#define LAYOUT_ACPI_SIZE 0x1f000ULL    /* up to the reset vector's page */
#define LAYOUT_RESET_VECTOR 0xffff0ULL /* f000:fff0 */
#define LAYOUT_HIGH_MEM_START 0x100000ULL
#define LAYOUT_KERNEL_DEFAULT_LOAD 0x1000000ULL

#define LAYOUT_MMIO_HOLE_START 0xc0000000ULL   /* 3 GiB */
#define LAYOUT_MMIO_HOLE_END 0x100000000ULL    /* 4 GiB */
#define LAYOUT_DEVICE_MMIO_START 0xd0000000ULL /* virtio-mmio windows */
#define LAYOUT_DEVICE_MMIO_SIZE 0x10000000ULL
#define LAYOUT_IOAPIC_ADDR 0xfec00000ULL
#define LAYOUT_LAPIC_ADDR 0xfee00000ULL
#define LAYOUT_KVM_IDENTITY_MAP 0xfffbc000ULL
#define LAYOUT_KVM_TSS 0xfffbd000ULL

/* Guests smaller than this cannot hold the boot structures and a kernel. */
#define LAYOUT_MIN_MEMORY (32ULL << 20)

#endif

/*
 * Port I/O map of Casulo's own platform device (not in the PC standard):
 *   0x600  ACPI sleep control register (FADT SLEEP_CONTROL_REG): writing
 *          SLP_EN with SLP_TYP 5 (S5) powers the VM off
 *   0x601  ACPI sleep status register
 *   0x602  ACPI reset register (FADT RESET_REG): writing 1 reboots
 *   0x604  exit status: a 32-bit write records the status the VMM
 *          exits with once the guest powers off or reboots
 */
#define PORT_ACPI_SLEEP_CONTROL 0x600
#define PORT_ACPI_SLEEP_STATUS 0x601
#define PORT_ACPI_RESET 0x602
#define PORT_EXIT_STATUS 0x604
#define ACPI_RESET_VALUE 0x01
#define ACPI_S5_SLEEP_TYPE 5

/* ISA interrupt lines of the legacy devices. */
#define IRQ_POWER_BUTTON 3 /* the ACPI Generic Event Device's line (COM2's, unused) */
#define IRQ_COM1 4
#define IRQ_RTC 8
/* GSIs for virtio-mmio devices start above the ISA range. */
#define IRQ_DEVICE_BASE 16
#define IOAPIC_PINS 24
