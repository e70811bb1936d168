#!/usr/bin/python3
"""Check that the layers of src/ depend on each other one way only.

- Inside src/vmm/, a module is a file and its own header (vm.c and vm.h,
  devices/virtio/blk.c and blk.h); module A depends on module B when a file
  of A includes B's header.  That graph must have no cycle: the core (vm.c)
  knows no device, the devices and the snapshot code know no builder, the
  builder (machine.c) knows no control plane.
- src/common/ includes nothing else from src/; src/cgroup/ and src/security/
  only src/common/ (they serve containers and VMs alike); src/vmm/ includes nothing
  from src/api/, src/oci/, src/image/ or src/bin/, and says nothing of
  HTTP: status codes and the API's JSON belong to src/api/.

usage: check-layers.py [SRC_DIR]   (default: the src/ beside this script)
Prints each problem and exits 1 if there is one.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
HTTP = re.compile(r'\bHTTP\b|\bmicrohttpd\b|http_status', re.I)


def sources(root):
    for d, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith(('.c', '.h')):
                yield os.path.join(d, f)


def includes(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return INCLUDE.findall(f.read())


def module(src, path):
    """vmm/devices/virtio/blk for src/vmm/devices/virtio/blk.c or .h."""
    return os.path.splitext(os.path.relpath(path, src))[0]


def find_cycle(graph):
    """One cycle of the graph as a list of nodes, or None."""
    state = {}
    stack = []

    def visit(n):
        state[n] = 'open'
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 'open':
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 'done'
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def check_vmm_graph(src, problems):
    graph, why = {}, {}
    for path in sources(os.path.join(src, 'vmm')):
        a = module(src, path)
        graph.setdefault(a, set())
        for inc in includes(path):
            b = os.path.splitext(inc)[0]
            if b.startswith('vmm/') and b != a:
                graph[a].add(b)
                why.setdefault((a, b), '%s includes "%s"' % (os.path.relpath(path, src), inc))
    # Report every cycle, one at a time: cut the edge that closed it.
    while True:
        cycle = find_cycle(graph)
        if cycle is None:
            break
        problems.append('include cycle in src/vmm: ' + ' -> '.join(cycle) + '\n' +
                        '\n'.join('    ' + why[(cycle[i], cycle[i + 1])] for i in range(len(cycle) - 1)))
        graph[cycle[-2]].discard(cycle[-1])
    return graph


def check_layer(src, layer, forbidden, problems, no_http=False):
    for path in sources(os.path.join(src, layer)):
        rel = os.path.relpath(path, src)
        for inc in includes(path):
            if inc.split('/')[0] in forbidden:
                problems.append('%s includes "%s": %s/ must not depend on %s/' % (rel, inc, layer, inc.split('/')[0]))
        if no_http:
            with open(path, encoding='utf-8', errors='replace') as f:
                for n, line in enumerate(f, 1):
                    if HTTP.search(line):
                        problems.append('%s:%d: HTTP belongs to src/api/: %s' % (rel, n, line.strip()))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', 'src')
    problems = []
    graph = check_vmm_graph(src, problems)
    check_layer(src, 'common', {'vmm', 'api', 'oci', 'image', 'bin', 'cgroup', 'security'}, problems)
    # libcasulo-cgroup serves containers and VMs alike: it knows neither.
    check_layer(src, 'cgroup', {'vmm', 'api', 'oci', 'image', 'bin'}, problems)
    # libcasulo-security (SELinux) serves VMs and containers alike.
    check_layer(src, 'security', {'vmm', 'api', 'oci', 'image', 'bin', 'cgroup'}, problems)
    check_layer(src, 'vmm', {'api', 'oci', 'image', 'bin'}, problems, no_http=True)
    for p in problems:
        print(p)
    if problems:
        print('check-layers: %d problem(s)' % len(problems))
        return 1
    print('check-layers: %d modules in src/vmm, no include cycle; common/, cgroup/, security/ and vmm/ depend only downwards' %
          len(graph))
    return 0


if __name__ == '__main__':
    sys.exit(main())
