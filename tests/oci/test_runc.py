#!/usr/bin/env python3
"""runc's command line where callers rely on it (issue 16 items 6, 7, 8
and 11): exit statuses and messages, --debug logs in text and JSON, help
and version, and spec's template; compared with Debian's runc 1.1 where
the behaviour is meant to match."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNC, WORK, Bundle, contains, eq, fails, main, need_runc, ok_run, rt, run, runc,  # noqa: E402
                     start_detached, test, unique_id, wait_status)

VERBS = ['create', 'start', 'run', 'state', 'kill', 'delete', 'events', 'exec', 'list', 'ps', 'pause', 'resume',
         'update', 'features', 'spec', 'checkpoint', 'restore']


# ---- item 6: exit statuses and messages ----

@test
def exec_failures_exit_255_as_runc():
    need_runc()
    b = Bundle(['sleep', '60'])
    cid, _ = start_detached(b)
    rid = unique_id('runc')
    ok_run(runc('run', '-d', '--bundle', b.dir, rid))
    for name, runtime in ((cid, rt), (rid, runc)):
        who = 'ours' if runtime is rt else 'runc'
        p = runtime('exec', '--pid-file', '/no/such/dir/pid', name, 'true')
        eq(p.returncode, 255, f'{who}: exec --pid-file in a missing directory')
        ok_run(runtime('pause', name))
        p = runtime('exec', name, 'true')
        eq(p.returncode, 255, f'{who}: exec into a paused container')
        contains(p.stderr, 'cannot exec in a paused container', f'{who}: message')
        ok_run(runtime('resume', name))
        eq(runtime('exec', name, 'sh', '-c', 'exit 3').returncode, 3, f"{who}: the process's own status")


@test
def kill_signal_0_checks_liveness():
    b = Bundle(['sleep', '60'])
    cid, _ = start_detached(b)
    ok_run(rt('kill', cid, '0'), 'kill ID 0')
    ok_run(rt('kill', '-a', cid, '0'), 'kill -a ID 0')
    eq(wait_status(cid, 'running')['status'], 'running', 'still running')
    ok_run(rt('kill', cid, 'KILL'))
    wait_status(cid, 'stopped')
    fails(rt('kill', cid, '0'), 'not running', what='kill 0 of a stopped container')
    if RUNC:
        rid = unique_id('runc')
        ok_run(runc('run', '-d', '--bundle', b.dir, rid))
        ok_run(runc('kill', '-a', rid, '0'), 'runc takes kill -a ID 0 too')


@test
def an_unreachable_seccomp_agent_is_named_as_runc_names_it():
    b = Bundle(['true'])
    b.linux['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': os.path.join(WORK, 'no-agent.sock'),
                          'syscalls': [{'names': ['mkdir'], 'action': 'SCMP_ACT_NOTIFY'}]}
    b.write()
    fails(run(b), 'failed to connect with seccomp agent', what='run with no agent at listenerPath')
    if RUNC:
        fails(runc('run', '--bundle', b.dir, unique_id('runc')), 'failed to connect with seccomp agent',
              what='runc with no agent')


# ---- item 7: --debug, --log, --log-format ----

PHASES = ['config loaded', 'cgroups made', 'joined the cgroups', 'namespaces entered', 'mounts done', 'exec ']


def debug_lines(text, fmt):
    out = []
    for line in text.splitlines():
        if fmt == 'json':
            rec = json.loads(line)
            if set(rec) != {'level', 'msg', 'time'}:
                raise AssertionError(f'a JSON log record with other fields: {line}')
            if rec['level'] == 'debug':
                out.append(rec['msg'])
        elif 'level=debug' in line:
            if not line.startswith('time="'):
                raise AssertionError(f'not a logfmt line: {line}')
            out.append(line.split('msg="', 1)[1])
    return out


def check_phases(lines, phases, what):
    missing = [p for p in phases if not any(p in line for line in lines)]
    if missing:
        raise AssertionError(f'{what}: no debug record for {missing} in {lines}')


@test
def debug_logs_every_phase_in_text_and_json():
    b = Bundle(['true'])
    p = rt('--debug', 'run', '--bundle', b.dir, unique_id())
    ok_run(p, 'run --debug')
    check_phases(debug_lines(p.stderr, 'text'), PHASES, 'run --debug on stderr')
    eq(debug_lines(run(b).stderr, 'text'), [], 'no debug records without --debug')
    for fmt in ('text', 'json'):
        log = os.path.join(tempfile.mkdtemp(dir=WORK), 'log')
        p = rt('--debug', '--log', log, '--log-format', fmt, 'run', '--bundle', b.dir, unique_id())
        ok_run(p, f'run --debug --log-format {fmt}')
        eq(p.stderr, '', f'{fmt}: nothing on stderr with --log')
        check_phases(debug_lines(open(log).read(), fmt), PHASES, f'--log-format {fmt}')
    # exec logs its own steps.
    b.set_args('sleep', '60')
    cid, _ = start_detached(b)
    log = os.path.join(tempfile.mkdtemp(dir=WORK), 'log')
    ok_run(rt('--debug', '--log', log, '--log-format', 'json', 'exec', cid, 'true'), 'exec --debug')
    check_phases(debug_lines(open(log).read(), 'json'), ['exec: process', 'joined the cgroups',
                                                         'namespaces entered', 'exec '], 'exec --debug')
    if RUNC:
        p = runc('--debug', 'run', '--bundle', Bundle(['true']).dir, unique_id('runc'))
        if not debug_lines(p.stderr, 'text'):
            raise AssertionError(f'runc --debug logs no logfmt debug line: {p.stderr[:300]!r}')


# ---- item 8: help and version ----

@test
def version_is_three_lines_go_runc_parses():
    for flag in ('--version', '-v'):
        p = rt(flag)
        ok_run(p, flag)
        lines = p.stdout.splitlines()
        eq(len(lines), 3, f'{flag}: {lines}')
        if not lines[0].startswith('casulo-runtime version ') or not lines[1].startswith('commit: ') or \
                not lines[2].startswith('spec: 1.'):
            raise AssertionError(f'{flag}: {lines}')
        if lines[1] == 'commit: ' or len(lines[2].split()[1].split('.')) != 3:
            raise AssertionError(f'{flag}: {lines}')


@test
def help_of_every_command_as_runc_lays_it_out():
    for verb in VERBS:
        for args in (['help', verb], [verb, '--help'], [verb, '-h']):
            p = rt(*args)
            ok_run(p, ' '.join(args))
            for section in ('NAME:\n   casulo-runtime ' + verb + ' - ', '\nUSAGE:\n   casulo-runtime ' + verb):
                contains(p.stdout, section, ' '.join(args))
        contains(rt('help', verb).stdout, 'OPTIONS:' if verb not in ('start', 'state', 'pause', 'resume',
                                                                     'features') else 'USAGE:', verb)
    for args in (['--help'], ['help'], ['-h']):
        p = ok_run(rt(*args), ' '.join(args))
        for section in ('NAME:', 'USAGE:', 'VERSION:', 'COMMANDS:', 'GLOBAL OPTIONS:'):
            contains(p, section, ' '.join(args))
    p = rt('help', 'foo')
    contains(p.stderr, "No help topic for 'foo'", 'help foo')
    if RUNC:
        eq(p.returncode, runc('help', 'foo').returncode, 'help foo: the exit status of runc')
    elif p.returncode == 0:
        raise AssertionError('help foo succeeded')


# ---- item 11: spec ----

@test
def spec_writes_runcs_template():
    need_runc()
    for extra in ([], ['--rootless']):
        ours, theirs = tempfile.mkdtemp(dir=WORK), tempfile.mkdtemp(dir=WORK)
        ok_run(rt('spec', '--bundle', ours, *extra), f'spec {extra}')
        ok_run(runc('spec', '--bundle', theirs, *extra), f'runc spec {extra}')
        a, b = (json.load(open(os.path.join(d, 'config.json'))) for d in (ours, theirs))
        # The version of the spec implemented, and the hostname, are ours.
        for k in ('ociVersion', 'hostname'):
            a.pop(k)
            b.pop(k)
        eq(a, b, f'spec {extra}: runc 1.1\'s template')
        if {'type': 'cgroup'} in a['linux']['namespaces']:
            raise AssertionError('a cgroup namespace in the template')
        fails(rt('spec', '--bundle', ours, *extra), 'exists', what='spec over an existing config.json')


if __name__ == '__main__':
    sys.exit(main())
