#!/bin/sh
# protoc.sh PROTOC PYTHON FILE.proto OUTDIR: the message classes from
# protoc (protobuf-compiler, matching python3-protobuf's runtime) and the
# gRPC stubs from grpc-tools' plugin.
set -eu
protoc=$1 python=$2 proto=$3 out=$4
dir=$(dirname "$proto")
"$protoc" -I"$dir" --python_out="$out" "$proto"
"$python" -m grpc_tools.protoc -I"$dir" --grpc_python_out="$out" "$proto"
