"""GRIDBUS_GRID_GRPC_PROCESSES: several grid gRPC server processes serve one port, each with its
own index; they stop together, and none outlives its parent, even one killed with -9."""
from __future__ import annotations

import os
import signal
import socket

import grpc

from demo.city import grid_cells
from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc
from tests.conftest import CITY
from tests.support import metadata, service_process, token, wait_for

MD = metadata(token("officer", CITY.city_code))


def _port_free(port: int) -> bool:
    """Whether a server that shares no port could bind it now."""
    with socket.socket(socket.AF_INET6) as s:
        try:
            s.bind(("::", port))
        except OSError:
            return False
    return True


def _serving_lines(proc) -> int:
    return proc.log().count("gridbus.grid.v1.GridService serving gRPC on port")


def test_two_processes_serve_one_port_and_stop_together(environment, city):
    code, w, s, e, n = grid_cells(CITY)[5]
    with service_process(environment, "grid", "grpc", name="grid-grpc-2", env={"GRIDBUS_GRID_GRPC_PROCESSES": "2"}) as proc:
        wait_for(lambda: _serving_lines(proc) == 2, 60, what="both processes to serve", process=proc)
        for _ in range(12):  # a connection each: the kernel spreads them over the two
            with grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
                found = grid_pb2_grpc.GridServiceStub(channel).Locate(
                    pb.LocateRequest(lon=(w + e) / 2, lat=(s + n) / 2), metadata=MD)
                assert found.grid.code == code
        port = proc.port
    assert _port_free(port)


def test_the_processes_end_when_their_parent_is_killed(environment, city):
    with service_process(environment, "grid", "grpc", name="grid-grpc-2-kill9",
                         env={"GRIDBUS_GRID_GRPC_PROCESSES": "2"}) as proc:
        wait_for(lambda: _serving_lines(proc) == 2, 60, what="both processes to serve", process=proc)
        os.kill(proc.popen.pid, signal.SIGKILL)  # the parent alone, not its process group
        proc.popen.wait(10)
        wait_for(lambda: _port_free(proc.port), 30, what="the children to end with their parent")
