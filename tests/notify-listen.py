#!/usr/bin/env python3
# A stand-in for systemd's notification socket: print every datagram
# sent to NOTIFY_SOCKET, one field a line, until STOPPING=1 or a timeout.
#   notify-listen.py PATH TIMEOUT
import os
import socket
import sys
import time

path, timeout = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
deadline = time.monotonic() + timeout
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    for field in msg.split("\n"):
        if field:
            print(field, flush=True)
    if "STOPPING=1" in msg.split("\n"):
        break
s.close()
os.unlink(path)
