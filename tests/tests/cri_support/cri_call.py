"""One CRI call, as kubelet makes it: `cri_call.py SOCKET METHOD` reads the
request as JSON on stdin and prints the response as JSON on stdout (field
names as in the .proto, defaults included, bytes as UTF-8 text). A gRPC
error prints its code and details on stderr and exits 2. The messages come
from cri.proto, compiled by protoc into the directory named by CRI_PB_DIR."""

import json
import os
import sys

sys.path.insert(0, os.environ["CRI_PB_DIR"])

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import cri_pb2  # noqa: E402

IMAGE_METHODS = {"ImageStatus"}


def main():
    socket, method = sys.argv[1], sys.argv[2]
    service = "ImageService" if method in IMAGE_METHODS else "RuntimeService"
    descriptor = cri_pb2.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    request_type = getattr(cri_pb2, descriptor.input_type.name)
    response_type = getattr(cri_pb2, descriptor.output_type.name)
    request = json_format.Parse(sys.stdin.read() or "{}", request_type())
    with grpc.insecure_channel("unix://" + socket) as channel:
        call = channel.unary_unary(
            "/runtime.v1.%s/%s" % (service, method),
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            response = call(request, timeout=float(os.environ.get("CRI_TIMEOUT", "120")))
        except grpc.RpcError as e:
            print("%s: %s" % (e.code().name, e.details()), file=sys.stderr)
            sys.exit(2)
    result = json_format.MessageToDict(
        response, preserving_proto_field_name=True, including_default_value_fields=True
    )
    # Bytes (ExecSync's output) as text rather than JSON's base64.
    for field in response.DESCRIPTOR.fields:
        if field.type == field.TYPE_BYTES:
            result[field.name] = getattr(response, field.name).decode("utf-8", "replace")
    print(json.dumps(result))


main()
