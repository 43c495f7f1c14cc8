"""A raw uevent netlink listener in this process's network namespace, on
the kernel's and udev's groups (1 and 2): prints `listening`, then, once
the file STOP exists or after SECONDS, the number of messages that
mentioned MARKER. Usage: listen.py MARKER STOP SECONDS"""
import os
import select
import socket
import sys
import time

marker, stop_file, seconds = sys.argv[1].encode(), sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 15)  # NETLINK_KOBJECT_UEVENT
s.bind((0, 1 | 2))
stop = time.monotonic() + seconds
print("listening", flush=True)
seen = 0
while time.monotonic() < stop and not os.path.exists(stop_file):
    ready, _, _ = select.select([s], [], [], 0.1)
    if ready and marker in s.recv(65536):
        seen += 1
print(seen, flush=True)
