#!/usr/bin/python3
"""A minimal CRI client: one call to a container runtime's CRI socket, as the
kubelet makes it, with the request and the reply as JSON.

    cri.py STUBS SOCKET METHOD [REQUEST_JSON]

STUBS is a directory holding api_pb2.py, made from api.proto with
`protoc --python_out=STUBS`. METHOD is a method of runtime.v1's
RuntimeService or ImageService (RunPodSandbox, ExecSync, ListImages, ...).
REQUEST_JSON is the request in protobuf's JSON mapping (field names as in
api.proto or in lowerCamelCase); it defaults to {}.

The reply is printed as one JSON object with the field names of api.proto,
every field present (zero values too), and the top-level bytes fields
(ExecSync's stdout and stderr) as UTF-8 text rather than base64. A failed
call prints `CODE: details` on stderr and exits with status 1; a call that
takes longer than TIMEOUT_SECONDS fails as DEADLINE_EXCEEDED.

Needs Debian's python3-grpcio and python3-protobuf.
"""

import json
import sys

import grpc
from google.protobuf import json_format

TIMEOUT_SECONDS = 30


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    stubs, socket, method = sys.argv[1:4]
    request_json = sys.argv[4] if len(sys.argv) == 5 else "{}"
    sys.path.insert(0, stubs)
    import api_pb2

    found = [
        (service, service.methods_by_name[method])
        for service in api_pb2.DESCRIPTOR.services_by_name.values()
        if method in service.methods_by_name
    ]
    if not found:
        sys.exit(f"cri.py: no CRI method {method!r} in runtime.v1's services")
    service, descriptor = found[0]
    request_class = getattr(api_pb2, descriptor.input_type.name)
    reply_class = getattr(api_pb2, descriptor.output_type.name)
    request = json_format.Parse(request_json, request_class())

    with grpc.insecure_channel(f"unix://{socket}") as channel:
        call = channel.unary_unary(
            f"/{service.full_name}/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=reply_class.FromString,
        )
        try:
            reply = call(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            sys.exit(1)

    out = json_format.MessageToDict(
        reply, preserving_proto_field_name=True, including_default_value_fields=True
    )
    for field in reply.DESCRIPTOR.fields:
        if field.type == field.TYPE_BYTES and field.label != field.LABEL_REPEATED:
            out[field.name] = getattr(reply, field.name).decode("utf-8", errors="replace")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
