#!/usr/bin/env python3
"""Wrap a flat 64-bit test-guest image (linked at 16 MiB, entry at +0x200)
into a minimal bzImage: one setup sector carrying a boot-protocol 2.15
setup header, then the image as the protected-mode part.  Used only to
exercise casulo-vmm's bzImage path with a guest the tests build."""
import struct
import sys

flat = open(sys.argv[1], 'rb').read()
setup_sects = 1
setup = bytearray(512 * (setup_sects + 1))
setup[0x1f1] = setup_sects
struct.pack_into('<H', setup, 0x1fe, 0xaa55)
setup[0x200] = 0xeb                  # jmp: header ends at 0x202 + offset
setup[0x201] = 0x6a                  # through init_size and beyond (0x26c)
setup[0x202:0x206] = b'HdrS'
struct.pack_into('<H', setup, 0x206, 0x020f)          # protocol 2.15
setup[0x211] = 0x01                                   # loadflags: LOADED_HIGH
struct.pack_into('<I', setup, 0x214, 0x100000)        # code32_start
struct.pack_into('<I', setup, 0x22c, 0x7fffffff)      # initrd_addr_max
struct.pack_into('<I', setup, 0x230, 0x200000)        # kernel_alignment
setup[0x234] = 1                                      # relocatable
struct.pack_into('<H', setup, 0x236, 0x3)             # xloadflags: KERNEL_64 | ABOVE_4G
struct.pack_into('<I', setup, 0x238, 4095)            # cmdline_size
struct.pack_into('<Q', setup, 0x258, 0x1000000)       # pref_address
struct.pack_into('<I', setup, 0x260, len(flat) + 0x100000)  # init_size
open(sys.argv[2], 'wb').write(bytes(setup) + flat)
