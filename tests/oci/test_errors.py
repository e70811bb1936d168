#!/usr/bin/env python3
"""Bad input: a malformed or invalid config.json gets an error naming the
field and the reason, and leaves no state, cgroup, mount or process; so do
failures during setup (executable missing, bad sysctl, bad cwd, ...)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (STATE_ROOT, WORK, Bundle, Clean, fails, fails_clean, main, ok_run, rt, run,  # noqa: E402
                     start_detached, test, unique_id)


def set_path(cfg, path, value):
    keys = path.split('.')
    for k in keys[:-1]:
        cfg = cfg[int(k)] if isinstance(cfg, list) else cfg.setdefault(k, {})
    if value is DELETE:
        del cfg[keys[-1]]
    elif isinstance(cfg, list):
        cfg[int(keys[-1])] = value
    else:
        cfg[keys[-1]] = value


DELETE = object()

# (field to change, new value, words the error must hold)
INVALID = [
    ('ociVersion', DELETE, ['ociVersion', 'required']),
    ('ociVersion', '2.0.0', ['ociVersion', '2.0.0']),
    ('root.path', DELETE, ['root.path', 'required']),
    ('root.readonly', 'yes', ['root.readonly', 'expected a boolean, got string']),
    ('process.args', 'sh', ['process.args', 'expected an array of strings, got string']),
    ('process.args', [], ['process.args', 'required']),
    ('process.args', ['sh', 3], ['process.args[1]', 'expected a string, got integer']),
    ('process.cwd', 'relative', ['process.cwd', 'absolute']),
    ('process.env', ['NOEQUALS'], ['process.env[0]', 'KEY=value']),
    ('process.user.uid', -1, ['process.user.uid', 'negative']),
    ('process.user.uid', 1 << 33, ['process.user.uid', 'out of range']),
    ('process.rlimits', [{'type': 'RLIMIT_BOGUS', 'soft': 1, 'hard': 1}], ['process.rlimits[0].type', 'RLIMIT_BOGUS']),
    ('process.rlimits', [{'type': 'RLIMIT_NOFILE', 'soft': 10, 'hard': 5}], ['process.rlimits[0]', 'above hard']),
    ('process.capabilities.bounding', 'CAP_FLY', ['process.capabilities.bounding', 'expected an array of strings']),
    ('process.oomScoreAdj', 5000, ['process.oomScoreAdj', '-1000..1000']),
    ('mounts.0.destination', 'proc', ['mounts[0].destination', 'absolute']),
    ('mounts.0', 'notanobject', ['mounts[0]', 'expected an object']),
    ('linux.namespaces', [{'type': 'pid'}, {'type': 'pid'}, {'type': 'mount'}], ['linux.namespaces[1]', 'duplicate']),
    ('linux.namespaces', [{'type': 'pidd'}], ['linux.namespaces[0].type', 'pidd']),
    ('linux.devices', [{'path': '/dev/x', 'type': 'q', 'major': 1, 'minor': 1}], ['linux.devices[0].type']),
    ('linux.devices', [{'path': '/dev/x', 'type': 'c'}], ['linux.devices[0]', 'major and minor']),
    ('linux.resources.memory', {'limit': 'lots'}, ['linux.resources.memory.limit', 'expected an integer']),
    ('linux.resources.memory', {'limit': 100, 'swap': 50}, ['linux.resources.memory.swap', 'below']),
    ('linux.resources.cpu', {'period': 10}, ['linux.resources.cpu.period', '1000..1000000']),
    ('linux.resources.devices', [{'access': 'rwm'}], ['linux.resources.devices[0].allow', 'required']),
    ('linux.resources.devices', [{'allow': True, 'access': 'rwx'}], ['linux.resources.devices[0].access', 'rwx']),
    ('linux.resources.blockIO', {'weight': 5}, ['linux.resources.blockIO.weight', '10..1000']),
    ('linux.resources.hugepageLimits', [{'pageSize': '2XB', 'limit': 1}], ['hugepageLimits[0].pageSize']),
    ('linux.seccomp', {'defaultAction': 'SCMP_ACT_MAYBE'}, ['linux.seccomp.defaultAction', 'SCMP_ACT_MAYBE']),
    ('linux.seccomp', {'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_Z80']},
     ['linux.seccomp.architectures[0]', 'SCMP_ARCH_Z80']),
    ('linux.seccomp', {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_NOTIFY'}]},
     ['linux.seccomp.listenerPath', 'required']),
    ('linux.seccomp', {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
        {'names': ['read'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 7, 'value': 1, 'op': 'SCMP_CMP_EQ'}]}]},
     ['linux.seccomp.syscalls[0].args[0].index']),
    ('linux.seccomp', {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
        {'names': ['read'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'value': 1, 'op': 'SCMP_CMP_ABOUT'}]}]},
     ['linux.seccomp.syscalls[0].args[0].op', 'SCMP_CMP_ABOUT']),
    ('linux.seccomp', {'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '/run/x.sock', 'syscalls': [
        {'names': ['getpid', 'write'], 'action': 'SCMP_ACT_NOTIFY'}]},
     ['linux.seccomp.syscalls[0]', 'SCMP_ACT_NOTIFY cannot be used for the write syscall']),
    ('linux.uidMappings', [{'containerID': 0, 'hostID': 1000}], ['linux.uidMappings[0]', 'size']),
    ('linux.sysctl', {'net.ipv4.ip_forward': 1}, ['linux.sysctl', 'expected a string']),
    ('linux.timeOffsets', {'realtime': {'secs': 1}}, ['linux.timeOffsets.realtime']),
    ('linux.personality', {'domain': 'AMIGA'}, ['linux.personality.domain', 'AMIGA']),
    ('linux.memoryPolicy', {'mode': 'MPOL_NOPE'}, ['linux.memoryPolicy.mode', 'MPOL_NOPE']),
    ('linux.memoryPolicy', {'mode': 'MPOL_BIND', 'nodes': '3-1'}, ['linux.memoryPolicy.nodes', '3-1']),
    ('linux.rootfsPropagation', 'sideways', ['linux.rootfsPropagation', 'sideways']),
    ('hooks.prestart', [{'path': 'relative'}], ['hooks.prestart[0].path', 'absolute']),
    ('hooks.poststop', [{'path': '/bin/true', 'timeout': 0}], ['hooks.poststop[0].timeout']),
    ('hostname', 5, ['hostname', 'expected a string, got integer']),
    ('annotations', {'a': 1}, ['annotations.a', 'expected a string']),
    # issue 17: json-c keeps "\u0000" inside a string, C stops there ("sl\0eep" ran "sl").
    ('process.args', ['sl\0eep'], ['config.json: process.args[0]', 'NUL character']),
    ('process.env', ['PATH=/bin', 'A=b\0c'], ['process.env[1]', 'NUL character']),
    ('process.cwd', '/tmp\0/x', ['process.cwd', 'NUL character']),
    ('mounts.0.destination', '/proc\0x', ['mounts[0].destination', 'NUL character']),
    ('hostname', 'box\0evil', ['hostname', 'NUL character']),
    ('hooks.prestart', [{'path': '/bin/true\0x'}], ['hooks.prestart[0].path', 'NUL character']),
    ('linux.sysctl', {'kernel.shm_rmid_forced\0/../x': '1'}, ['a key holds a NUL character', 'kernel.shm_rmid_forced']),
    ('annotations', {'k\0': 'v'}, ['a key holds a NUL character']),
]


@test
def invalid_fields_are_named():
    bad = []
    for path, value, needles in INVALID:
        b = Bundle(['true'])
        set_path(b.config, path, value)
        b.write()
        try:
            fails_clean(b, *needles, what=f'{path} = {value!r}')
        except AssertionError as e:
            bad.append(str(e))
    if bad:
        raise AssertionError(f'{len(bad)} of {len(INVALID)} cases: ' + ' | '.join(bad))


@test
def malformed_json_is_refused():
    b = Bundle(['true'])
    for text, needles in (('{"ociVersion": "1.0.0",', ['not valid JSON']),
                          ('[1, 2]', ['expected an object, got array']),
                          ('{"ociVersion": "1.0.0"} trailing', ['not valid JSON']),
                          ('', ['not valid JSON'])):
        with open(os.path.join(b.dir, 'config.json'), 'w') as f:
            f.write(text)
        fails_clean(b, 'config.json', *needles, what=f'config {text!r}')
    os.unlink(os.path.join(b.dir, 'config.json'))
    fails_clean(b, 'config.json', 'No such file', what='missing config.json')


@test
def nul_in_process_json_and_resources_is_refused():
    cid, _ = start_detached(Bundle(['sleep', '30']))
    proc = os.path.join(WORK, cid + '-process.json')
    with open(proc, 'w') as f:
        json.dump({'args': ['ec\0ho', 'hi'], 'cwd': '/', 'user': {'uid': 0, 'gid': 0}}, f)
    fails(rt('exec', '--process', proc, cid), 'process.json: args[0]', 'NUL character', what='exec --process')
    fails(rt('update', '-r', '-', cid, input=json.dumps({'unified': {'pids.max\0': '5'}})), 'resources',
          'a key holds a NUL character', what='update -r')
    ok_run(rt('delete', '--force', cid))


@test
def ids_are_checked_before_use():
    # issue 17: a 1,000-character id failed at mkdir with a message cut at
    # 2 KiB ("File name too l"); at 3,000 the cause was gone.
    b = Bundle(['true'])
    for cid, needles in (('a' * 256, ['(256 characters)', 'longer than 255']),
                         ('a' * 3000, ['(3000 characters)', 'longer than 255']),
                         ('a/b', ['invalid id format', "invalid character '/'"]),
                         ('a\tb', ['invalid id format', 'byte 0x09']),
                         ('..', ['invalid id format'])):
        for verb in ('run', 'create', 'state', 'delete'):
            args = ('--bundle', b.dir) if verb in ('run', 'create') else ()
            err = fails(rt(verb, *args, cid), *needles, what=f'{verb} of a bad id {cid[:20]!r}')
            if len(err) > 400:
                raise AssertionError(f'{verb}: a {len(cid)}-character id gives a {len(err)}-character message')
        if os.listdir(STATE_ROOT) if os.path.isdir(STATE_ROOT) else []:
            raise AssertionError(f'state left: {os.listdir(STATE_ROOT)}')
    cid = 'x' * 255
    clean = Clean(cid)
    ok_run(run(b, cid), 'run with the longest id')
    clean.check()


@test
def long_names_never_push_the_cause_out():
    # The log cut messages at 2 KiB, the child's error report at 8 KiB:
    # now a message keeps its end (the cause) whatever the names in it.
    b = Bundle(['true'])
    missing = '/' + '/'.join(['d' * 200] * 15)  # 3,000 characters
    b.config['mounts'].append({'destination': '/mnt', 'type': 'bind', 'source': missing, 'options': ['rbind']})
    b.write()
    err = fails_clean(b, "mount '/mnt'", what='a bind of a missing 3,000-character path')
    if not err.rstrip().endswith('No such file or directory"'):
        raise AssertionError(f'the cause is gone: ...{err[-120:]!r}')
    log = os.path.join(WORK, 'long.log')
    p = rt('--log', log, '--log-format', 'json', 'run', '--bundle', Bundle(['z' * 9000]).dir, unique_id())
    fails(p, 'executable file not found', what='a 9,000-character executable name')
    rec = json.loads(open(log).read().splitlines()[-1])
    if not rec['msg'].endswith('executable file not found in $PATH') or len(rec['msg']) > 4096:
        raise AssertionError(f'log record of {len(rec["msg"])} characters ends with {rec["msg"][-80:]!r}')


@test
def setup_failures_leave_nothing():
    cases = [
        (['no-such-program'], {}, ['executable file not found']),
        (['/bin/no-such-program'], {}, ['/bin/no-such-program']),
        (['/etc'], {}, ['is a directory']),
        (['/etc/passwd'], {}, ['/etc/passwd', 'permission denied']),
        (['true'], {'process.cwd': '/etc/passwd'}, ["process.cwd '/etc/passwd'"]),
        (['true'], {'linux.sysctl': {'kernel.no_such_knob': '1'}}, ["sysctl 'kernel.no_such_knob'"]),
    ]
    for args, changes, needles in cases:
        b = Bundle(args)
        for k, v in changes.items():
            set_path(b.config, k, v)
        b.write()
        fails_clean(b, *needles, what=f'{args} {changes}')


if __name__ == '__main__':
    sys.exit(main())
