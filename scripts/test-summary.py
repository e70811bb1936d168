#!/usr/bin/env python3
"""Count test results across meson testlog.json files and print the final
`N passed, N failed, N skipped` line.

A TAP test counts each of its subtests ("ok", "not ok", "# SKIP"); a
plain test counts once (exit 77 = skipped).  A TAP test that died before
printing its plan or printed fewer results than planned counts its
missing results as failed, so a crash never shrinks the failure count.

Skipped tests are listed before that line, grouped by test program and
reason ("skipped: kvm/boot: 24 tests: /dev/kvm: ..."), so that a run that
could not test something says so where it is read.
"""
import json
import re
import sys

TAP_LINE = re.compile(r'^(not ok|ok)\b[^#]*(#\s*(SKIP|TODO)\b\s*(.*))?', re.I)
PLAN = re.compile(r'^1\.\.(\d+)')


def count_tap(text, skip_reasons=None):
    """Counts of passed, failed and skipped results; each skip's reason is
    appended to skip_reasons when it is given."""
    passed = failed = skipped = 0
    planned = None
    for line in text.splitlines():
        m = PLAN.match(line)
        if m:
            planned = int(m.group(1))
            continue
        m = TAP_LINE.match(line)
        if not m:
            continue
        directive = (m.group(3) or '').upper()
        if directive == 'SKIP':
            skipped += 1
            if skip_reasons is not None:
                skip_reasons.append(m.group(4).strip() or 'no reason given')
        elif m.group(1).lower() == 'ok' or directive == 'TODO':
            passed += 1
        else:
            failed += 1
    seen = passed + failed + skipped
    if planned is None and seen == 0:
        failed += 1
    elif planned is not None and seen < planned:
        failed += planned - seen
    return passed, failed, skipped


def failure_causes(text, lines_each=3, width=300):
    """Each 'not ok' line of a TAP output with the last lines of the
    comment just before it (taprun.py prints a failure's message there,
    its cause last)."""
    causes, comment = [], []
    for line in text.splitlines():
        if line.startswith('#'):
            comment.append(line[:width])
        elif line.startswith('not ok'):
            causes.append([line] + comment[-lines_each:])
            comment = []
        else:
            comment = []
    return causes


def main(args):
    details = '--details' in args
    paths = [a for a in args if a != '--details']
    totals = [0, 0, 0]
    failures = []
    skips = {}  # (test, reason) -> count, in the order first seen
    causes = []  # (test, lines): repeated at the end, where a cut log keeps them
    for path in paths:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for raw in lines:
            entry = json.loads(raw)
            out = entry.get('stdout') or ''
            reasons = []
            if PLAN.search(out) or TAP_LINE.search(out) or 'TAP version' in out:
                p, f, s = count_tap(out, reasons)
                # A TAP test whose process failed with all subtests passing
                # (a crash after the last line, a leak report) still fails.
                if f == 0 and entry['result'] in ('FAIL', 'TIMEOUT', 'ERROR'):
                    f = 1
            elif entry['result'] == 'SKIP':
                p, f, s = 0, 0, 1
                reasons.append((out.strip().splitlines() or ['exit status 77'])[-1])
            elif entry['result'] in ('OK', 'EXPECTEDFAIL'):
                p, f, s = 1, 0, 0
            else:
                p, f, s = 0, 1, 0
            if f:
                failures.append(entry['name'])
                causes += [(entry['name'], c) for c in failure_causes(out)]
            for reason in reasons:
                key = (entry['name'], reason)
                skips[key] = skips.get(key, 0) + 1
            if details:
                print(f"{entry['name']:<40} {entry['result']:<8} "
                      f"{p} passed, {f} failed, {s} skipped ({entry['duration']:.1f}s)")
                if f:
                    for line in out.splitlines():
                        if line.startswith(('not ok', '#')):
                            print('    ' + line)
            totals[0] += p
            totals[1] += f
            totals[2] += s
    for (name, reason), n in skips.items():
        print(f"skipped: {name}: {n} test{'s' if n > 1 else ''}: {reason}")
    for name, lines in causes:
        print(f'why: {name}: {lines[0]}')
        for line in lines[1:]:
            print('    ' + line)
    if failures:
        print('failed tests: ' + ', '.join(failures))
    line = f'{totals[0]} passed, {totals[1]} failed'
    if totals[2]:
        line += f', {totals[2]} skipped'
    print(line)
    return 1 if totals[1] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
