#!/bin/sh
# Build the kvm suite's test guest in its boot formats:
#   test-guest.elf       ELF, 64-bit entry (e_entry)
#   test-guest-pvh.elf   ELF with a PVH entry note
#   test-guest.bzimage   minimal bzImage around the same code
#   test-guest-mb.elf    multiboot: an ELF64 with a header, e_entry the 32-bit mb_start
#   test-guest-mb32.elf  the same as an ELF32 (objcopy -O elf32-i386)
#   test-guest-mb.bin    multiboot: a flat binary placed by the header's
#                        address fields (the a.out kludge)
# Usage: build.sh CC SRCDIR OUTDIR   (compiled freestanding, never sanitized)
set -eu
cc=$1 src=$2 out=$3
flags="-ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static -mno-red-zone -mno-sse -mno-mmx
  -mgeneral-regs-only -fno-stack-protector -fno-builtin -fno-asynchronous-unwind-tables -O2 -m64
  -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-T,$src/guest.ld -Wl,-z,max-page-size=4096"
# shellcheck disable=SC2086
$cc $flags -o "$out/test-guest.elf" "$src/start.S" "$src/guest.c"
# shellcheck disable=SC2086
$cc $flags -o "$out/test-guest-pvh.elf" "$src/start.S" "$src/pvh-note.S" "$src/guest.c"
objcopy -O binary "$out/test-guest.elf" "$out/test-guest.bin"
python3 "$src/mkbzimage.py" "$out/test-guest.bin" "$out/test-guest.bzimage"
# shellcheck disable=SC2086
$cc $flags -DMULTIBOOT_HEADER=1 -Wl,-e,mb_start -o "$out/test-guest-mb.elf" "$src/start.S" "$src/guest.c"
objcopy -O elf32-i386 "$out/test-guest-mb.elf" "$out/test-guest-mb32.elf"
# shellcheck disable=SC2086
$cc $flags -DMULTIBOOT_HEADER=2 -Wl,-e,mb_start -o "$out/test-guest-mb-aout.elf" "$src/start.S" "$src/guest.c"
objcopy -O binary "$out/test-guest-mb-aout.elf" "$out/test-guest-mb.bin"
rm -f "$out/test-guest-mb-aout.elf"
