# A pseudo-terminal pair: canonical editing and echo, ONLCR, window size, raw mode,
# and pty.fork (setsid + TIOCSCTTY) with the child writing to its controlling tty.
import os, pty, termios, signal, struct, fcntl
m, s = pty.openpty()
print(os.ttyname(s).startswith('/dev/pts/'), os.isatty(s), os.isatty(m))
os.write(m, b'hel\x7flo\r')
print(os.read(s, 100))
print(os.read(m, 100))
attrs = termios.tcgetattr(s)
print(bool(attrs[3] & termios.ICANON), bool(attrs[3] & termios.ECHO))
os.write(s, b'out\n'); print(os.read(m, 100))
fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
print(struct.unpack('HHHH', fcntl.ioctl(s, termios.TIOCGWINSZ, b'\0' * 8)))
attrs[3] &= ~(termios.ICANON | termios.ECHO); termios.tcsetattr(s, termios.TCSANOW, attrs)
os.write(m, b'x'); print(os.read(s, 10))
pid, fd = pty.fork()
if pid == 0:
    print('child tty', os.isatty(0)); os._exit(0)
out = b''
while True:
    try: d = os.read(fd, 100)
    except OSError: break
    if not d: break
    out += d
print(out)
print(os.waitpid(pid, 0)[1])
