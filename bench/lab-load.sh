#!/bin/sh
# tests/lab/run ARGS... for a benchmark, with this machine's load printed
# before and after: lab figures are only as quiet as the machine was.
echo "load on this machine before: $(uptime)"
status=0
tests/lab/run "$@" || status=$?
echo "load on this machine after: $(uptime)"
exit $status
