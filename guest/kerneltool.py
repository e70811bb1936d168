#!/usr/bin/python3
"""Kernel and initramfs helpers shared by guest/build.sh and tests/lab/run.

  kerneltool.py resolve [--meta] NAME      print "package<TAB>version" apt would
                                           install (--meta: what metapackage NAME
                                           depends on, e.g. linux-image-cloud-amd64)
  kerneltool.py deb [--meta] NAME          the same, plus "<TAB>path" of its .deb,
                                           downloaded once into $CASULO_CACHE/debs
                                           (default ~/.cache/casulo/debs)
  kerneltool.py vmlinux BZIMAGE OUT        extract the ELF vmlinux from a bzImage
  kerneltool.py modules MODDIR NAME...     print the .ko files NAME... need, each
                                           after its dependencies (paths relative
                                           to MODDIR); built-in modules are skipped
  kerneltool.py initramfs OUT BUSYBOX MODDIR INIT COMPRESSION MODULE...
                                           write an initramfs (busybox and its links,
                                           INIT as /init, the modules and their
                                           dependencies in /lib/modules, listed in
                                           load order in /lib/modules/order);
                                           prints the module files in that order
  kerneltool.py cpio DIR OUT [--compress none|gzip|lz4] [--node PATH:c|b:MAJ:MIN:MODE]...
                                           write DIR as a newc cpio archive owned
                                           by root with zero mtimes (reproducible,
                                           no root needed for device nodes)

Module dependencies come from each .ko's .modinfo section (`depends=`);
Debian's .deb carries no modules.dep.
"""
import bz2
import gzip
import hashlib
import json
import lzma
import os
import stat
import struct
import subprocess
import sys


class ToolError(Exception):
    pass


# --- bzImage -> vmlinux ---------------------------------------------------

# Magic of each payload compression the kernel's build can produce, and how
# to undo it.  Python's own modules where there is one, else the tool.
_COMPRESSIONS = [
    (b'\x1f\x8b', 'gzip'),
    (b'\xfd7zXZ\x00', 'xz'),
    (b'\x5d\x00\x00', 'lzma'),
    (b'BZh', 'bzip2'),
    (b'\x02\x21\x4c\x18', 'lz4'),
    (b'\x28\xb5\x2f\xfd', 'zstd'),
]


def _decompress(kind, data):
    if kind == 'gzip':
        return gzip.GzipFile(fileobj=__import__('io').BytesIO(data)).read()
    if kind in ('xz', 'lzma'):
        fmt = lzma.FORMAT_XZ if kind == 'xz' else lzma.FORMAT_ALONE
        return lzma.LZMADecompressor(format=fmt).decompress(data)
    if kind == 'bzip2':
        return bz2.BZ2Decompressor().decompress(data)
    tool = {'lz4': ['lz4', '-dc'], 'zstd': ['zstd', '-dcq']}[kind]
    try:
        r = subprocess.run(tool, input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise ToolError(f"'{tool[0]}' is needed to decompress this kernel "
                        "(scripts/install-deps.sh guest)") from None
    if r.returncode != 0:
        raise ToolError(f"{tool[0]}: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def extract_vmlinux(bzimage):
    """Return (elf_bytes, compression) for the kernel inside a bzImage."""
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b'HdrS':
        raise ToolError('not a bzImage (no HdrS setup header)')
    version = struct.unpack_from('<H', bzimage, 0x206)[0]
    if version < 0x208:
        raise ToolError(f'boot protocol {version:#x} has no payload fields')
    setup_sects = bzimage[0x1f1] or 4
    offset, length = struct.unpack_from('<II', bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start:start + length]
    if len(payload) != length or length < 8:
        raise ToolError('payload runs past the end of the file')
    kind = next((k for magic, k in _COMPRESSIONS if payload.startswith(magic)), None)
    if kind is None:
        raise ToolError(f'unknown payload compression (magic {payload[:6].hex()})')
    # The build appends the decompressed size (le32) after the stream.
    size = struct.unpack('<I', payload[-4:])[0]
    elf = _decompress(kind, payload[:-4])
    if elf[:4] != b'\x7fELF':
        raise ToolError(f'{kind} payload is not an ELF file')
    if len(elf) != size:
        raise ToolError(f'decompressed {len(elf)} bytes, header says {size}')
    return elf, kind


# --- modules ----------------------------------------------------------------

def modinfo(data):
    """Return the key=value fields of an ELF64 .ko's .modinfo section."""
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        raise ToolError('not a little-endian ELF64 module')
    shoff = struct.unpack_from('<Q', data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)

    def section(i):
        base = shoff + i * shentsize
        name, _type, _flags, _addr, off, size = struct.unpack_from('<IIQQQQ', data, base)
        return name, off, size

    _, stroff, strsize = section(shstrndx)
    strtab = data[stroff:stroff + strsize]
    for i in range(shnum):
        name, off, size = section(i)
        if strtab[name:strtab.index(b'\0', name)] == b'.modinfo':
            fields = {}
            for item in data[off:off + size].split(b'\0'):
                key, sep, value = item.decode(errors='replace').partition('=')
                if sep:
                    fields.setdefault(key, value)
            return fields
    raise ToolError('no .modinfo section')


def _modname(name):
    return name.replace('-', '_')


def module_index(moddir):
    """Map module name -> (relative path, [dependency names]) for a tree."""
    index = {}
    for root, _dirs, files in os.walk(moddir):
        for f in files:
            if not f.endswith('.ko'):
                continue
            path = os.path.join(root, f)
            with open(path, 'rb') as fh:
                info = modinfo(fh.read())
            name = _modname(info.get('name', f[:-3]))
            deps = [_modname(d) for d in info.get('depends', '').split(',') if d]
            index[name] = (os.path.relpath(path, moddir), deps)
    return index


def builtin_modules(moddir):
    names = set()
    try:
        with open(os.path.join(moddir, 'modules.builtin')) as fh:
            for line in fh:
                names.add(_modname(os.path.basename(line.strip())[:-3]))
    except FileNotFoundError:
        pass
    return names


def module_closure(moddir, wanted):
    """Relative paths of wanted modules and their dependencies, dependencies first."""
    index = module_index(moddir)
    builtin = builtin_modules(moddir)
    order, state = [], {}

    def visit(name, chain):
        if state.get(name) == 'done':
            return
        if state.get(name) == 'visiting':
            raise ToolError('dependency cycle: ' + ' -> '.join(chain + [name]))
        if name not in index:
            if name in builtin:
                state[name] = 'done'
                return
            raise ToolError(f"module '{name}' not found in {moddir}"
                            + (f" (needed by '{chain[-1]}')" if chain else ''))
        state[name] = 'visiting'
        for dep in index[name][1]:
            visit(dep, chain + [name])
        state[name] = 'done'
        order.append(index[name][0])

    for name in wanted:
        visit(_modname(name), [])
    return order


# --- cpio -------------------------------------------------------------------

def _cpio_entry(out, ino, name, mode, data=b'', rdev=(0, 0), nlink=1):
    name_b = name.encode() + b'\0'
    hdr = '070701' + ''.join(f'{v:08x}' for v in (
        ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
    out.append(hdr.encode() + name_b)
    out.append(b'\0' * (-(110 + len(name_b)) % 4))
    out.append(data)
    out.append(b'\0' * (-len(data) % 4))


def make_cpio(srcdir, nodes=()):
    """newc archive of srcdir (root-owned, mtime 0) plus extra device nodes."""
    out, ino = [], 1
    entries = []
    for root, dirs, files in os.walk(srcdir):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            entries.append(os.path.relpath(os.path.join(root, name), srcdir))
    for rel in sorted(entries):
        path = os.path.join(srcdir, rel)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            _cpio_entry(out, ino, rel, stat.S_IFLNK | 0o777, os.readlink(path).encode())
        elif stat.S_ISDIR(st.st_mode):
            _cpio_entry(out, ino, rel, stat.S_IFDIR | (st.st_mode & 0o7777), nlink=2)
        elif stat.S_ISREG(st.st_mode):
            with open(path, 'rb') as fh:
                _cpio_entry(out, ino, rel, stat.S_IFREG | (st.st_mode & 0o7777), fh.read())
        else:
            raise ToolError(f"'{rel}': unsupported file type in initramfs tree")
        ino += 1
    for node in nodes:
        rel, kind, major, minor, mode = node.split(':')
        fmt = stat.S_IFCHR if kind == 'c' else stat.S_IFBLK
        _cpio_entry(out, ino, rel, fmt | int(mode, 8), rdev=(int(major), int(minor)))
        ino += 1
    _cpio_entry(out, 0, 'TRAILER!!!', 0)
    return b''.join(out)


def compress(data, how):
    if how == 'none':
        return data
    if how == 'gzip':
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == 'lz4':
        # The kernel's initramfs unpacker reads only the legacy lz4 format.
        r = subprocess.run(['lz4', '-l', '-9', '-c'], input=data, capture_output=True, check=True)
        return r.stdout
    raise ToolError(f"unknown compression '{how}'")


def build_initramfs(out, busybox, moddir, modules, init, compression='none', extra=None):
    """Write an initramfs to out: busybox (static) with its applet links,
    init as /init, the modules (with their dependencies) flat in
    /lib/modules plus lib/modules/order listing them dependencies first,
    /dev/console, and extra {path in the archive: file here} (executable).
    Returns the module file names in load order."""
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as root:
        for d in ('bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib/modules', 'dev', 'proc', 'sys',
                  'run', 'tmp', 'root', 'etc', 'mnt', 'var'):
            os.makedirs(os.path.join(root, d))
        os.chmod(os.path.join(root, 'tmp'), 0o1777)
        os.chmod(os.path.join(root, 'root'), 0o700)
        shutil.copy(busybox, os.path.join(root, 'bin/busybox'))
        applets = subprocess.run([busybox, '--list-full'], capture_output=True, text=True,
                                 check=True).stdout.split()
        for applet in applets:
            link = os.path.join(root, applet)
            if not os.path.lexists(link):
                os.symlink('/bin/busybox', link)
        names = []
        for rel in module_closure(moddir, modules):
            name = os.path.basename(rel)
            if name in names:
                raise ToolError(f"two modules named '{name}'")
            shutil.copy(os.path.join(moddir, rel), os.path.join(root, 'lib/modules', name))
            names.append(name)
        with open(os.path.join(root, 'lib/modules/order'), 'w') as fh:
            fh.write(''.join(n + '\n' for n in names))
        with open(os.path.join(root, 'etc/passwd'), 'w') as fh:
            fh.write('root:x:0:0:root:/root:/bin/sh\n')
        with open(os.path.join(root, 'etc/group'), 'w') as fh:
            fh.write('root:x:0:\ntty:x:5:\n')
        for dest, src in [('init', init)] + sorted((extra or {}).items()):
            shutil.copy(src, os.path.join(root, dest))
            os.chmod(os.path.join(root, dest), 0o755)
        _write(out, compress(make_cpio(root, ['dev/console:c:5:1:0600']), compression))
    return names


# --- Debian packages ----------------------------------------------------------

def cache_dir():
    """Where downloaded .debs are kept: $CASULO_CACHE, else ~/.cache/casulo."""
    base = os.environ.get('CASULO_CACHE')
    if not base:
        xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        base = os.path.join(xdg, 'casulo')
    return base


def _apt_show(name):
    r = subprocess.run(['apt-cache', 'show', '--no-all-versions', name],
                       capture_output=True, text=True, check=False)
    fields = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition(': ')
        if sep and not line.startswith(' '):
            fields.setdefault(key, value)
    return fields if r.returncode == 0 and 'Version' in fields else None


_updated = False


def _apt_stamp():
    """Changes whenever apt's answer may: the package lists and preferences."""
    h = hashlib.sha256()
    for d in ('/var/lib/apt/lists', '/etc/apt/preferences.d', '/etc/apt/sources.list.d'):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            try:
                st = os.stat(os.path.join(d, n))
            except OSError:
                continue
            h.update(f'{d}/{n} {st.st_size} {st.st_mtime_ns}\n'.encode())
    for f in ('/etc/apt/preferences', '/etc/apt/sources.list'):
        try:
            h.update(f'{f} {os.stat(f).st_mtime_ns}\n'.encode())
        except OSError:
            pass
    return h.hexdigest()


def resolve(name, meta=False):
    """(package, version) apt would install for name.  With meta, name is a
    metapackage (linux-image-cloud-amd64) and the answer is what it depends on.
    Answers are remembered in $CASULO_CACHE/resolved.json until apt's lists
    change (apt-cache takes about half a second a call)."""
    path = os.path.join(cache_dir(), 'resolved.json')
    stamp = _apt_stamp()
    try:
        with open(path) as fh:
            memo = json.load(fh)
    except (OSError, ValueError):
        memo = {}
    if memo.get('stamp') != stamp:
        memo = {'stamp': stamp}
    key = f"{'meta:' if meta else ''}{name}"
    if key not in memo:
        memo[key] = _resolve(name, meta)
        os.makedirs(cache_dir(), exist_ok=True)
        with open(path + f'.{os.getpid()}', 'w') as fh:
            json.dump(memo, fh)
        os.replace(path + f'.{os.getpid()}', path)
    return tuple(memo[key])


def _resolve(name, meta=False):
    global _updated
    fields = _apt_show(name)
    if fields is None and not _updated and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        _updated = True
        subprocess.run(['apt-get', 'update', '-qq'], check=False)
        fields = _apt_show(name)
    if fields is None:
        raise ToolError(f"apt knows no package '{name}' (run apt-get update?)")
    if not meta:
        return fields.get('Package', name), fields['Version']
    dep = fields.get('Depends', '').split(',')[0].split('|')[0].split('(')[0].strip()
    if not dep:
        raise ToolError(f"'{name}' depends on nothing")
    return _resolve(dep)


def fetch_deb(package, version):
    """Path of the cached .deb for package=version, downloading it if needed."""
    debs = os.path.join(cache_dir(), 'debs')
    os.makedirs(debs, exist_ok=True)
    path = os.path.join(debs, f"{package}_{version.replace(':', '%3a')}_amd64.deb")
    if os.path.exists(path):
        return path
    tmp = os.path.join(debs, f'.download.{os.getpid()}')
    os.makedirs(tmp, exist_ok=True)
    try:
        cmd = ['apt-get', 'download', '-q', f'{package}={version}']
        if os.geteuid() == 0:
            cmd[2:2] = ['-o', 'APT::Sandbox::User=root']
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        got = [f for f in os.listdir(tmp) if f.endswith('.deb')]
        if r.returncode != 0 or len(got) != 1:
            raise ToolError(f'apt-get download {package}={version}: {r.stderr.strip()}')
        os.replace(os.path.join(tmp, got[0]), path)
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    return path


# --- command line -----------------------------------------------------------

def _write(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as fh:
        fh.write(data)
    os.replace(tmp, path)


def main(argv):
    try:
        if len(argv) in (2, 3) and argv[0] == 'deb':
            meta = argv[1] == '--meta'
            package, version = resolve(argv[-1], meta=meta)
            print(f'{package}\t{version}\t{fetch_deb(package, version)}')
        elif len(argv) in (2, 3) and argv[0] == 'resolve':
            print('%s\t%s' % resolve(argv[-1], meta=argv[1] == '--meta'))
        elif len(argv) == 3 and argv[0] == 'vmlinux':
            with open(argv[1], 'rb') as fh:
                elf, _kind = extract_vmlinux(fh.read())
            _write(argv[2], elf)
        elif len(argv) >= 2 and argv[0] == 'modules':
            for rel in module_closure(argv[1], argv[2:]):
                print(rel)
        elif len(argv) >= 6 and argv[0] == 'initramfs':
            # initramfs OUT BUSYBOX MODDIR INIT COMPRESSION MODULE...
            for name in build_initramfs(argv[1], argv[2], argv[3], argv[6:], argv[4], argv[5]):
                print(name)
        elif len(argv) >= 3 and argv[0] == 'cpio':
            how, nodes, rest = 'none', [], argv[3:]
            while rest:
                opt, val, rest = rest[0], rest[1], rest[2:]
                if opt == '--compress':
                    how = val
                elif opt == '--node':
                    nodes.append(val)
                else:
                    raise ToolError(f"unknown option '{opt}'")
            _write(argv[2], compress(make_cpio(argv[1], nodes), how))
        else:
            sys.stderr.write(__doc__)
            return 2
    except (ToolError, OSError, subprocess.CalledProcessError) as e:
        print(f'kerneltool: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
