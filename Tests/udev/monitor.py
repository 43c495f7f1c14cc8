"""A libudev monitor (pyudev over the system's libudev.so.1) on the `udev`
netlink group, filtered to SUBSYSTEM; prints `ready` once it listens, then
one line per device event: action, devpath, subsystem, DRIVER (or -),
whether the device is initialized (a udevd message) and whether its SEQNUM
grew. Exits after COUNT events, or with `timeout` after 30 s without one.
Usage: monitor.py SUBSYSTEM COUNT"""
import sys

import pyudev

subsystem, count = sys.argv[1], int(sys.argv[2])
monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="udev")
monitor.filter_by(subsystem)
monitor.start()
print("ready", flush=True)
last = 0
for _ in range(count):
    device = monitor.poll(timeout=30)
    if device is None:
        print("timeout", flush=True)
        sys.exit(1)
    grew = device.sequence_number > last
    last = device.sequence_number
    print(device.action, device.device_path, device.subsystem, device.properties.get("DRIVER", "-"),
          device.is_initialized, grew, flush=True)
