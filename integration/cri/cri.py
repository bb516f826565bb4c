#!/usr/bin/env python3
"""A small CRI client (runtime.v1) for the CRI lane: grpcio for the transport, and our own
protobuf codec with only the messages the lane needs.

    python3 cri.py SOCKET METHOD  < request.json  > response.json

The request and the response are JSON objects whose keys are the CRI field names (snake
case, as in the CRI API). Map fields are JSON objects; bytes come back as UTF-8 text. A gRPC
error prints `CODE: details` on stderr and exits 2.

Field numbers follow the public CRI API (k8s.io/cri-api, runtime/v1/api.proto); the
definitions below are written here, not generated.
"""
import json
import sys

import grpc

# A message is {field_name: (number, type, label)}. Types: "string", "bytes", "bool",
# "int32", "int64", "uint32", "uint64", "enum", or another message's name. Labels: "" (one
# value), "rep" (repeated) and "map" (map<string, string>).
M = {
    "VersionRequest": {"version": (1, "string", "")},
    "VersionResponse": {
        "version": (1, "string", ""),
        "runtime_name": (2, "string", ""),
        "runtime_version": (3, "string", ""),
        "runtime_api_version": (4, "string", ""),
    },
    "Int64Value": {"value": (1, "int64", "")},
    "UInt64Value": {"value": (1, "uint64", "")},
    "KeyValue": {"key": (1, "string", ""), "value": (2, "string", "")},
    "NamespaceOption": {
        "network": (1, "enum", ""),
        "pid": (2, "enum", ""),
        "ipc": (3, "enum", ""),
        "target_id": (4, "string", ""),
    },
    "LinuxSandboxSecurityContext": {
        "namespace_options": (1, "NamespaceOption", ""),
        "run_as_user": (3, "Int64Value", ""),
        "readonly_rootfs": (4, "bool", ""),
        "privileged": (6, "bool", ""),
    },
    "LinuxPodSandboxConfig": {
        "cgroup_parent": (1, "string", ""),
        "security_context": (2, "LinuxSandboxSecurityContext", ""),
        "sysctls": (3, "string", "map"),
    },
    "PodSandboxMetadata": {
        "name": (1, "string", ""),
        "uid": (2, "string", ""),
        "namespace": (3, "string", ""),
        "attempt": (4, "uint32", ""),
    },
    "PodSandboxConfig": {
        "metadata": (1, "PodSandboxMetadata", ""),
        "hostname": (2, "string", ""),
        "log_directory": (3, "string", ""),
        "labels": (6, "string", "map"),
        "annotations": (7, "string", "map"),
        "linux": (8, "LinuxPodSandboxConfig", ""),
    },
    "RunPodSandboxRequest": {
        "config": (1, "PodSandboxConfig", ""),
        "runtime_handler": (2, "string", ""),
    },
    "RunPodSandboxResponse": {"pod_sandbox_id": (1, "string", "")},
    "PodSandboxIdRequest": {"pod_sandbox_id": (1, "string", "")},
    "PodSandboxStatusRequest": {
        "pod_sandbox_id": (1, "string", ""),
        "verbose": (2, "bool", ""),
    },
    "PodSandboxNetworkStatus": {"ip": (1, "string", "")},
    "PodSandboxStatus": {
        "id": (1, "string", ""),
        "metadata": (2, "PodSandboxMetadata", ""),
        "state": (3, "enum", ""),
        "created_at": (4, "int64", ""),
        "network": (5, "PodSandboxNetworkStatus", ""),
        "labels": (7, "string", "map"),
        "runtime_handler": (9, "string", ""),
    },
    "PodSandboxStatusResponse": {
        "status": (1, "PodSandboxStatus", ""),
        "info": (2, "string", "map"),
    },
    "PodSandboxFilter": {"id": (1, "string", "")},
    "ListPodSandboxRequest": {"filter": (1, "PodSandboxFilter", "")},
    "PodSandbox": {
        "id": (1, "string", ""),
        "metadata": (2, "PodSandboxMetadata", ""),
        "state": (3, "enum", ""),
    },
    "ListPodSandboxResponse": {"items": (1, "PodSandbox", "rep")},
    "ImageSpec": {"image": (1, "string", "")},
    "LinuxContainerResources": {
        "cpu_period": (1, "int64", ""),
        "cpu_quota": (2, "int64", ""),
        "cpu_shares": (3, "int64", ""),
        "memory_limit_in_bytes": (4, "int64", ""),
        "oom_score_adj": (5, "int64", ""),
        "cpuset_cpus": (6, "string", ""),
        "cpuset_mems": (7, "string", ""),
        "memory_swap_limit_in_bytes": (10, "int64", ""),
    },
    "LinuxContainerSecurityContext": {
        "privileged": (2, "bool", ""),
        "namespace_options": (3, "NamespaceOption", ""),
        "run_as_user": (5, "Int64Value", ""),
        "readonly_rootfs": (7, "bool", ""),
        "no_new_privs": (11, "bool", ""),
    },
    "LinuxContainerConfig": {
        "resources": (1, "LinuxContainerResources", ""),
        "security_context": (2, "LinuxContainerSecurityContext", ""),
    },
    "ContainerMetadata": {"name": (1, "string", ""), "attempt": (2, "uint32", "")},
    "ContainerConfig": {
        "metadata": (1, "ContainerMetadata", ""),
        "image": (2, "ImageSpec", ""),
        "command": (3, "string", "rep"),
        "args": (4, "string", "rep"),
        "working_dir": (5, "string", ""),
        "envs": (6, "KeyValue", "rep"),
        "labels": (9, "string", "map"),
        "annotations": (10, "string", "map"),
        "log_path": (11, "string", ""),
        "linux": (15, "LinuxContainerConfig", ""),
    },
    "CreateContainerRequest": {
        "pod_sandbox_id": (1, "string", ""),
        "config": (2, "ContainerConfig", ""),
        "sandbox_config": (3, "PodSandboxConfig", ""),
    },
    "CreateContainerResponse": {"container_id": (1, "string", "")},
    "ContainerIdRequest": {"container_id": (1, "string", "")},
    "StopContainerRequest": {
        "container_id": (1, "string", ""),
        "timeout": (2, "int64", ""),
    },
    "ContainerStatusRequest": {
        "container_id": (1, "string", ""),
        "verbose": (2, "bool", ""),
    },
    "ContainerStatus": {
        "id": (1, "string", ""),
        "metadata": (2, "ContainerMetadata", ""),
        "state": (3, "enum", ""),
        "created_at": (4, "int64", ""),
        "started_at": (5, "int64", ""),
        "finished_at": (6, "int64", ""),
        "exit_code": (7, "int32", ""),
        "image": (8, "ImageSpec", ""),
        "image_ref": (9, "string", ""),
        "reason": (10, "string", ""),
        "message": (11, "string", ""),
        "log_path": (15, "string", ""),
    },
    "ContainerStatusResponse": {
        "status": (1, "ContainerStatus", ""),
        "info": (2, "string", "map"),
    },
    "ContainerFilter": {
        "id": (1, "string", ""),
        "pod_sandbox_id": (3, "string", ""),
    },
    "ListContainersRequest": {"filter": (1, "ContainerFilter", "")},
    "Container": {
        "id": (1, "string", ""),
        "pod_sandbox_id": (2, "string", ""),
        "metadata": (3, "ContainerMetadata", ""),
        "state": (6, "enum", ""),
    },
    "ListContainersResponse": {"containers": (1, "Container", "rep")},
    "UpdateContainerResourcesRequest": {
        "container_id": (1, "string", ""),
        "linux": (2, "LinuxContainerResources", ""),
    },
    "ExecSyncRequest": {
        "container_id": (1, "string", ""),
        "cmd": (2, "string", "rep"),
        "timeout": (3, "int64", ""),
    },
    "ExecSyncResponse": {
        "stdout": (1, "bytes", ""),
        "stderr": (2, "bytes", ""),
        "exit_code": (3, "int32", ""),
    },
    "CpuUsage": {
        "timestamp": (1, "int64", ""),
        "usage_core_nano_seconds": (2, "UInt64Value", ""),
        "usage_nano_cores": (3, "UInt64Value", ""),
    },
    "MemoryUsage": {
        "timestamp": (1, "int64", ""),
        "working_set_bytes": (2, "UInt64Value", ""),
        "available_bytes": (3, "UInt64Value", ""),
        "usage_bytes": (4, "UInt64Value", ""),
        "rss_bytes": (5, "UInt64Value", ""),
        "page_faults": (6, "UInt64Value", ""),
        "major_page_faults": (7, "UInt64Value", ""),
    },
    "ContainerAttributes": {
        "id": (1, "string", ""),
        "metadata": (2, "ContainerMetadata", ""),
    },
    "ContainerStats": {
        "attributes": (1, "ContainerAttributes", ""),
        "cpu": (2, "CpuUsage", ""),
        "memory": (3, "MemoryUsage", ""),
    },
    "ContainerStatsResponse": {"stats": (1, "ContainerStats", "")},
    "RuntimeCondition": {
        "type": (1, "string", ""),
        "status": (2, "bool", ""),
        "reason": (3, "string", ""),
        "message": (4, "string", ""),
    },
    "RuntimeStatus": {"conditions": (1, "RuntimeCondition", "rep")},
    "StatusRequest": {"verbose": (1, "bool", "")},
    "StatusResponse": {"status": (1, "RuntimeStatus", "")},
    "Empty": {},
}

# RuntimeService methods: request and response message names.
METHODS = {
    "Version": ("VersionRequest", "VersionResponse"),
    "Status": ("StatusRequest", "StatusResponse"),
    "RunPodSandbox": ("RunPodSandboxRequest", "RunPodSandboxResponse"),
    "StopPodSandbox": ("PodSandboxIdRequest", "Empty"),
    "RemovePodSandbox": ("PodSandboxIdRequest", "Empty"),
    "PodSandboxStatus": ("PodSandboxStatusRequest", "PodSandboxStatusResponse"),
    "ListPodSandbox": ("ListPodSandboxRequest", "ListPodSandboxResponse"),
    "CreateContainer": ("CreateContainerRequest", "CreateContainerResponse"),
    "StartContainer": ("ContainerIdRequest", "Empty"),
    "StopContainer": ("StopContainerRequest", "Empty"),
    "RemoveContainer": ("ContainerIdRequest", "Empty"),
    "ListContainers": ("ListContainersRequest", "ListContainersResponse"),
    "ContainerStatus": ("ContainerStatusRequest", "ContainerStatusResponse"),
    "UpdateContainerResources": ("UpdateContainerResourcesRequest", "Empty"),
    "ExecSync": ("ExecSyncRequest", "ExecSyncResponse"),
    "ContainerStats": ("ContainerIdRequest", "ContainerStatsResponse"),
}

VARINT = {"bool", "int32", "int64", "uint32", "uint64", "enum"}


def varint(n):
    n &= (1 << 64) - 1  # negative ints are ten-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode(msg, value):
    schema = M[msg]
    out = bytearray()
    for name, v in value.items():
        if name not in schema:
            raise KeyError(f"{msg} has no field {name!r} here")
        num, typ, label = schema[name]
        if label == "map":
            items = [encode_map_entry(k, x) for k, x in v.items()]
            for it in items:
                out += varint(num << 3 | 2) + varint(len(it)) + it
            continue
        for x in v if label == "rep" else [v]:
            out += encode_field(num, typ, x)
    return bytes(out)


def encode_map_entry(k, v):
    return encode_field(1, "string", k) + encode_field(2, "string", v)


def encode_field(num, typ, x):
    if typ in VARINT:
        return varint(num << 3) + varint(int(x))
    if typ == "string":
        data = x.encode()
    elif typ == "bytes":
        data = x.encode() if isinstance(x, str) else bytes(x)
    else:
        data = encode(typ, x)
    return varint(num << 3 | 2) + varint(len(data)) + data


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(msg, buf):
    by_num = {num: (name, typ, label) for name, (num, typ, label) in M[msg].items()}
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            raw, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            raw, i = buf[i : i + n], i + n
        elif wire == 1:
            raw, i = buf[i : i + 8], i + 8
        elif wire == 5:
            raw, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"{msg}: wire type {wire} of field {num}")
        if num not in by_num:
            continue  # a field this client does not define
        name, typ, label = by_num[num]
        if label == "map":
            entry = decode_map_entry(raw)
            out.setdefault(name, {})[entry[0]] = entry[1]
            continue
        val = decode_value(typ, raw)
        if label == "rep":
            out.setdefault(name, []).append(val)
        else:
            out[name] = val
    return out


def decode_map_entry(raw):
    k = v = ""
    i = 0
    while i < len(raw):
        key, i = read_varint(raw, i)
        n, i = read_varint(raw, i)
        s = bytes(raw[i : i + n]).decode()
        i += n
        if key >> 3 == 1:
            k = s
        else:
            v = s
    return k, v


def decode_value(typ, raw):
    if typ in ("int32", "int64"):
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if typ == "bool":
        return bool(raw)
    if typ in VARINT:
        return raw
    if typ in ("string", "bytes"):
        return bytes(raw).decode(errors="replace")
    return decode(typ, bytes(raw))


def call(socket, method, request):
    req_type, resp_type = METHODS[method]
    with grpc.insecure_channel(f"unix://{socket}") as ch:
        rpc = ch.unary_unary(
            f"/runtime.v1.RuntimeService/{method}",
            request_serializer=lambda v: encode(req_type, v),
            response_deserializer=lambda b: decode(resp_type, b),
        )
        return rpc(request, timeout=120)


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in METHODS:
        sys.exit(f"usage: cri.py SOCKET METHOD < request.json\nmethods: {' '.join(METHODS)}")
    text = sys.stdin.read().strip()
    try:
        resp = call(sys.argv[1], sys.argv[2], json.loads(text) if text else {})
    except grpc.RpcError as e:
        print(f"{e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(2)
    json.dump(resp, sys.stdout)
    print()


if __name__ == "__main__":
    main()
