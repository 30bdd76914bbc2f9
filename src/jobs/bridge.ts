/**
 * The in-sandbox half of the egress proxy. The job's network namespace has a loopback interface and
 * nothing else; the bridge listens on 127.0.0.1:BRIDGE_PORT there and carries each connection to
 * the proxy's unix socket, which is bound into the sandbox. It is a short Python program (python3 is
 * in every runtime image Warden binds; socat is not), started as the sandbox's first process: it
 * listens, then forks and execs the job's command, forwards connections while the command runs,
 * and exits with the command's status (128 + N for a signal, as bwrap reports it). Whatever the job
 * does to the bridge, it reaches only the proxy, and the proxy decides.
 */

/** 3128: the port proxies customarily use; the namespace is the job's own, so nothing else holds it. */
export const BRIDGE_PORT = 3128;
/** Where the proxy's socket directory appears inside the sandbox. */
export const SANDBOX_SOCKET_DIR = '/run/warden-egress';
export const SANDBOX_SOCKET = `${SANDBOX_SOCKET_DIR}/proxy.sock`;
export const BRIDGE_PYTHON = '/usr/bin/python3';

export const BRIDGE_SOURCE = String.raw`
import os, selectors, signal, socket, sys
port, path, argv = int(sys.argv[1]), sys.argv[2], sys.argv[4:]
R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(128)
listener.setblocking(False)
wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False)
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
pid = os.fork()
if pid == 0:
    # Python ignores SIGPIPE and SIGXFSZ; the command must get the defaults back. The listener and
    # the pipe are close-on-exec.
    signal.set_wakeup_fd(-1)
    for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        os.write(2, ("warden: cannot start %s: %s\n" % (argv[0], e.strerror)).encode())
        os._exit(127)
sel = selectors.DefaultSelector()
sel.register(listener, R, None)
sel.register(wake_r, R, None)

class Pair:
    def __init__(self, a, b):
        self.s, self.buf, self.eof, self.masks = [a, b], [b"", b""], [False, False], [0, 0]
    def close(self):
        for i in (0, 1):
            if self.masks[i]:
                sel.unregister(self.s[i])
            self.masks[i] = 0
            self.s[i].close()
    def update(self):
        for i in (0, 1):
            m = (R if not self.eof[i] and not self.buf[i] else 0) | (W if self.buf[1 - i] else 0)
            if m != self.masks[i]:
                if not self.masks[i]:
                    sel.register(self.s[i], m, (self, i))
                elif not m:
                    sel.unregister(self.s[i])
                else:
                    sel.modify(self.s[i], m, (self, i))
                self.masks[i] = m
        if self.eof[0] and self.eof[1] and not self.buf[0] and not self.buf[1]:
            self.close()
    def event(self, i, ev):
        try:
            if ev & R:
                data = self.s[i].recv(65536)
                if data:
                    self.buf[i] = data
                else:
                    self.eof[i] = True
                    self.s[1 - i].shutdown(socket.SHUT_WR)
            if ev & W:
                n = self.s[i].send(self.buf[1 - i])
                self.buf[1 - i] = self.buf[1 - i][n:]
                if not self.buf[1 - i] and self.eof[1 - i]:
                    self.s[i].shutdown(socket.SHUT_WR)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self.close()
        self.update()

def accept():
    try:
        client, _ = listener.accept()
    except OSError:
        return
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.settimeout(5)
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    client.setblocking(False)
    upstream.setblocking(False)
    Pair(client, upstream).update()

while True:
    for key, ev in sel.select():
        if key.fileobj is listener:
            accept()
        elif key.fileobj == wake_r:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        else:
            pair, i = key.data
            if pair.masks[i]:
                pair.event(i, ev)
`;

/** `argv` run behind the bridge. */
export function bridgeArgv(argv: readonly string[]): string[] {
  if (argv.length === 0) throw new Error('bridgeArgv: empty command');
  return [BRIDGE_PYTHON, '-I', '-S', '-c', BRIDGE_SOURCE, String(BRIDGE_PORT), SANDBOX_SOCKET, '--', ...argv];
}
