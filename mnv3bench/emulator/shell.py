"""The emulated phone's shell: a small interpreter with an allow-list, never the host's sh.

It understands what the runner and the device probe send: words with sh quoting,
`;` / `&&` / `||` / newlines, `$?`, the redirections `2>&1` and `>/dev/null`, and the
commands in `Shell.COMMANDS` (getprop, cat, ls, mkdir, chmod, rm, sha256sum, df,
dumpsys battery, echo, taskset, pkill, ...), plus running the benchmark binary by path.
Anything else is `sh: X: not found` (exit 127). Command substitution (backticks, `$(`)
is refused as a syntax error: nothing a client sends is ever handed to a host shell.

The shell runs on a `ShellHost`: the few things it needs from the phone (files, the
virtual /sys and /proc, properties, the benchmark processes, df and battery reports).
EmulatedPhone implements it; this module never imports the phone.
"""

from __future__ import annotations

import hashlib
import math
import re
import signal
import stat as stat_module
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mnv3bench.emulator.sandbox import DeviceStat, SandboxError, SandboxFS
from mnv3bench.emulator.sysfs import VirtualSysfs

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
EXIT_SYNTAX = 2

_TOYBOX_PID = 4242  # the pid toybox names in its errors (its own)
_STATUS = object()  # a `$?` inside a word, expanded when the command runs
# The longest command line accepted. adbd takes the whole OPEN payload after "shell:" as
# the command (AOSP packages/modules/adb, adb.cpp handle_packet A_OPEN: the service name is
# the payload, trailing NULs stripped), and a payload is at most the connection's maxdata,
# MAX_PAYLOAD = 1 MiB (adb.h); we found no separate limit for shell commands, so this is
# MAX_PAYLOAD. The parser is linear in the length: a command this long parses in well
# under a second.
MAX_COMMAND_LENGTH = 1024 * 1024
_OPERATORS = (";", "&&", "||", "\n")
_UNSUPPORTED = set("|&<>()")
# Runs of characters with no meaning to the parser, taken in one step (one per character
# made a 1 MiB word cost seconds of CPU).
_PLAIN_RUN = re.compile(r"[^ \t\n\\'\"`$;&|<>()#][^ \t\n\\'\"`$;&|<>()]*")  # "#" starts no word
_QUOTED_RUN = re.compile(r'[^"\\`$]+')


@dataclass(frozen=True)
class Mount:
    """One row of df."""

    device: str
    mount: str
    aliases: tuple[str, ...]   # device path prefixes that live on this mount
    total_kb: int
    used_kb: int
    available_kb: int


@runtime_checkable
class ShellHost(Protocol):
    """What the shell needs from the phone it runs on (EmulatedPhone implements it)."""

    fs: SandboxFS             # the phone's files (normalize, stat, listdir, open_read, ...)
    sysfs: VirtualSysfs       # the read-only /sys and /proc
    props: dict[str, str]     # getprop
    abi: str                  # uname -m
    cpu_count: int            # nproc, and the cpus a taskset mask may name

    def is_benchmark_binary(self, device_path: str) -> bool:
        """True for the one kind of file the phone can run: its benchmark_model stand-in."""

    def run_benchmark(self, device_path: str, args: list[str], out: Callable[[str], None],
                      cancelled: threading.Event, cpus: set[int] | None = None) -> int:
        """Run the benchmark binary with `args` on virtual `cpus`, streaming output to `out`;
        returns its exit status. May raise DropConnection (a fault)."""

    def kill_matching(self, name: str, *, full: bool = False, sig: int = signal.SIGTERM) -> int:
        """pkill: signal benchmark processes by name (command line with full); how many."""

    def kill_pid(self, pid: int, sig: int = signal.SIGTERM) -> bool:
        """kill: signal one benchmark process; False when there is no such process."""

    def pids_named(self, name: str) -> list[int]:
        """pidof: the running benchmark processes called `name`."""

    def mounts(self) -> list[Mount]:
        """df's rows."""

    def battery_report(self) -> str:
        """`dumpsys battery` in Android's format."""


class ShellSyntaxError(Exception):
    """A command line the emulator's shell does not accept."""


@dataclass
class Redirect:
    fd: int          # 1 or 2
    target: str      # "&1", "&2" or a path


@dataclass
class SimpleCommand:
    words: list[list[object]] = field(default_factory=list)   # parts: str | _STATUS
    redirects: list[Redirect] = field(default_factory=list)


def parse(command: str) -> list[tuple[str, SimpleCommand]]:
    """Split a command line into (connector, command) pairs; connector of the first is ";".

    Linear in the length of `command`: a word is collected as a list of pieces and joined
    once when it ends (appending to a str inside a list copied the word at every char)."""
    if len(command) > MAX_COMMAND_LENGTH:
        raise ShellSyntaxError(f"command too long ({len(command)} characters; at most {MAX_COMMAND_LENGTH})")
    result: list[tuple[str, SimpleCommand]] = []
    current = SimpleCommand()
    connector = ";"
    word: list[object] | None = None
    i, n = 0, len(command)

    def add(part: object) -> None:
        nonlocal word
        if word is None:
            word = []
        word.append(part)

    def end_word() -> None:
        nonlocal word
        if word is not None:
            current.words.append(_join_pieces(word))
            word = None

    def dollar(j: int) -> int:
        """Expand `$...` at command[j] == "$"; returns the index after it."""
        nxt = command[j + 1] if j + 1 < n else ""
        if nxt == "?":
            add(_STATUS)
            return j + 2
        if nxt == "(":
            raise ShellSyntaxError("command substitution $(...) is not supported")
        if nxt == "{":
            close = command.find("}", j)
            if close < 0:
                raise ShellSyntaxError("bad substitution")
            name = command[j + 2:close]
            if name == "?":
                add(_STATUS)
            elif not name.replace("_", "a").isalnum():
                raise ShellSyntaxError(f"${{{name}}}: bad substitution")
            return close + 1  # other variables are unset: expand to nothing
        if nxt == "_" or nxt.isalpha():
            k = j + 1
            while k < n and (command[k] == "_" or command[k].isalnum()):
                k += 1
            add("")  # unset variable
            return k
        add("$")
        return j + 1

    while i < n:
        c = command[i]
        if c in " \t":
            end_word()
            i += 1
        elif c == "\\":
            if i + 1 < n and command[i + 1] != "\n":
                add(command[i + 1])
            i += 2
        elif c == "'":
            close = command.find("'", i + 1)
            if close < 0:
                raise ShellSyntaxError("unterminated quoted string")
            add(command[i + 1:close])
            i = close + 1
        elif c == '"':
            i += 1
            add("")
            while True:
                if i >= n:
                    raise ShellSyntaxError("unterminated quoted string")
                d = command[i]
                if d == '"':
                    i += 1
                    break
                if d == "\\" and i + 1 < n and command[i + 1] in '"\\$`\n':
                    add(command[i + 1])
                    i += 2
                elif d == "`":
                    raise ShellSyntaxError("command substitution `...` is not supported")
                elif d == "$":
                    i = dollar(i)
                elif run := _QUOTED_RUN.match(command, i):
                    add(run.group())
                    i = run.end()
                else:
                    add(d)
                    i += 1
        elif c == "`":
            raise ShellSyntaxError("command substitution `...` is not supported")
        elif c == "$":
            i = dollar(i)
        elif c == "#" and word is None:
            close = command.find("\n", i)
            i = n if close < 0 else close
        elif command.startswith(("&&", "||"), i) or c in ";\n":
            end_word()
            op = command[i:i + 2] if command.startswith(("&&", "||"), i) else c
            if not current.words and op in ("&&", "||"):
                raise ShellSyntaxError(f"syntax error: unexpected '{op}'")
            result.append((connector, current))
            current, connector = SimpleCommand(), op
            i += len(op)
        elif c == ">":
            fd = 1
            if word is not None and _join_pieces(word) in (["1"], ["2"]):
                fd = int(_join_pieces(word)[0])  # `2>`: the digits just before > name the fd
                word = None
            end_word()
            i += 1
            if i < n and command[i] == ">":
                i += 1
            while i < n and command[i] in " \t":
                i += 1
            j = i
            while j < n and command[j] not in " \t;&|\n<>()'\"`$":
                j += 1
            target = command[i:j]
            if target.startswith("&") or (target == "" and j < n and command[j] == "&"):
                k = j + 1 if target == "" else j
                while k < n and command[k].isdigit():
                    k += 1
                target = command[i:k] if target == "" else target
                j = k
            if not target:
                raise ShellSyntaxError("syntax error: redirection without a target")
            current.redirects.append(Redirect(fd, target))
            i = j
        elif c in _UNSUPPORTED:
            raise ShellSyntaxError(f"'{c}' is not supported by the mnv3bench emulator's shell")
        elif run := _PLAIN_RUN.match(command, i):
            add(run.group())
            i = run.end()
        else:  # a "#" inside a word
            add(c)
            i += 1
    end_word()
    if connector in ("&&", "||") and not current.words:
        raise ShellSyntaxError(f"syntax error: '{connector}' at the end")
    result.append((connector, current))
    return [(conn, cmd) for conn, cmd in result if cmd.words or cmd.redirects]


def _join_pieces(pieces: list[object]) -> list[object]:
    """A word's parts: adjacent string pieces joined into one, `$?` markers kept apart."""
    parts: list[object] = []
    run: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            run.append(piece)
            continue
        if run:
            parts.append("".join(run))
            run = []
        parts.append(piece)
    if run or not parts:
        parts.append("".join(run))
    return parts


@dataclass
class _IO:
    """Where a command writes, and what it runs under."""

    out: Callable[[str], None]
    err: Callable[[str], None]
    cancelled: threading.Event
    cpus: set[int] | None = None   # virtual cpus from taskset


def _mode_string(st: DeviceStat) -> str:
    return stat_module.filemode(st.mode)


class Shell:
    """One shell session's interpreter, bound to the phone it runs on."""

    def __init__(self, phone: ShellHost) -> None:
        self.phone = phone
        self.fs = phone.fs
        self.sysfs = phone.sysfs
        self.status = 0
        self.COMMANDS: dict[str, Callable[[list[str], _IO], int]] = {
            "getprop": self.cmd_getprop, "cat": self.cmd_cat, "ls": self.cmd_ls,
            "mkdir": self.cmd_mkdir, "chmod": self.cmd_chmod, "rm": self.cmd_rm,
            "sha256sum": self.cmd_sha256sum, "df": self.cmd_df, "dumpsys": self.cmd_dumpsys,
            "echo": self.cmd_echo, "true": lambda a, io: 0, "false": lambda a, io: 1,
            "taskset": self.cmd_taskset, "pkill": self.cmd_pkill, "kill": self.cmd_kill,
            "pidof": self.cmd_pidof, "sleep": self.cmd_sleep, "uname": self.cmd_uname,
            "nproc": self.cmd_nproc, "test": self.cmd_test, "[": self.cmd_test,
        }

    # -- running -------------------------------------------------------------------------

    def run(self, command: str, write: Callable[[bytes], None], cancelled: threading.Event) -> int:
        """Run a command line, writing its output as produced; returns the last status."""

        def emit(text: str) -> None:
            if text:
                write(text.encode("utf-8", "surrogateescape"))

        try:
            program = parse(command)
        except ShellSyntaxError as exc:
            emit(f"sh: {exc}\n")
            self.status = EXIT_SYNTAX
            return self.status
        for connector, simple in program:
            if cancelled.is_set():
                break
            if connector == "&&" and self.status != 0:
                continue
            if connector == "||" and self.status == 0:
                continue
            words = ["".join(str(self.status) if p is _STATUS else str(p) for p in w)
                     for w in simple.words]
            io = self._redirected(simple.redirects, emit, cancelled)
            if io is None:
                self.status = 1
                continue
            if words and words[0] == "exit":
                self.status = int(words[1]) if len(words) > 1 and words[1].isdigit() else self.status
                break
            self.status = self.execute(words, io) if words else 0
        return self.status

    def _redirected(self, redirects: list[Redirect], emit: Callable[[str], None],
                    cancelled: threading.Event) -> _IO | None:
        streams: dict[int, Callable[[str], None]] = {1: emit, 2: emit}
        for r in redirects:
            if r.target in ("&1", "&2"):
                streams[r.fd] = streams[int(r.target[1])]
            elif r.target == "/dev/null":
                streams[r.fd] = lambda _text: None
            else:
                emit(f"sh: {r.target}: redirection to files is not supported by the "
                     "mnv3bench emulator's shell\n")
                return None
        return _IO(out=streams[1], err=streams[2], cancelled=cancelled)

    def execute(self, words: list[str], io: _IO) -> int:
        name, args = words[0], words[1:]
        if "/" in name:
            return self._run_program(name, args, io)
        handler = self.COMMANDS.get(name)
        if handler is None:
            io.err(f"sh: {name}: not found\n")
            return EXIT_NOT_FOUND
        # Errors name device paths only: an OSError's filename is the host path of the file.
        try:
            return handler(args, io)
        except SandboxError as exc:
            io.err(self.fs.device_text(f"{name}: {exc.message}\n"))
            return 1
        except OSError as exc:  # as toybox says it: "mkdir: /file/x: Not a directory"
            where = f"{exc.filename}: " if exc.filename else ""
            io.err(self.fs.device_text(f"{name}: {where}{exc.strerror or exc}\n"))
            return 1
        except (ValueError, OverflowError) as exc:  # e.g. `sleep inf`
            io.err(self.fs.device_text(f"{name}: {exc}\n"))
            return 1

    def _run_program(self, path: str, args: list[str], io: _IO) -> int:
        """Run a file by path: only the benchmark binary can be run."""
        try:
            norm = self.fs.normalize(path)
            if self.sysfs.is_virtual(norm):
                io.err(f"sh: {path}: Permission denied\n")
                return EXIT_NOT_EXECUTABLE
            st = self.fs.stat(norm)
        except SandboxError:
            st = None
        if st is None:
            io.err(f"sh: {path}: not found\n")
            return EXIT_NOT_FOUND
        if not st.is_file or not st.permissions & 0o111:
            io.err(f"sh: {path}: Permission denied\n")
            return EXIT_NOT_EXECUTABLE
        if not self.phone.is_benchmark_binary(norm):
            io.err(f"sh: {path}: cannot execute binary file: Exec format error "
                   "(the mnv3bench emulator runs only its own benchmark_model stand-in)\n")
            return EXIT_NOT_EXECUTABLE
        return self.phone.run_benchmark(norm, args, io.out, io.cancelled, io.cpus)

    # -- helpers -------------------------------------------------------------------------

    def _read_text(self, path: str) -> str | None:
        """Content of a virtual file, or None (regular files are streamed elsewhere)."""
        return self.sysfs.read(self.fs.normalize(path))

    # -- commands ------------------------------------------------------------------------

    def cmd_getprop(self, args: list[str], io: _IO) -> int:
        props = self.phone.props
        if args:
            io.out(props.get(args[0], args[1] if len(args) > 1 else "") + "\n")
        else:
            io.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())))
        return 0

    def cmd_echo(self, args: list[str], io: _IO) -> int:
        newline = True
        if args and args[0] == "-n":
            newline, args = False, args[1:]
        io.out(" ".join(args) + ("\n" if newline else ""))
        return 0

    def cmd_cat(self, args: list[str], io: _IO) -> int:
        status = 0
        for path in args:
            norm = self.fs.normalize(path)
            if self.sysfs.is_virtual(norm):
                text = self.sysfs.read(norm)
                if text is None:
                    reason = "Is a directory" if self.sysfs.is_dir(norm) else "No such file or directory"
                    io.err(f"cat: {path}: {reason}\n")
                    status = 1
                else:
                    io.out(text)
                continue
            st = self.fs.stat(norm)
            if st is None or st.is_dir:
                io.err(f"cat: {path}: {'Is a directory' if st else 'No such file or directory'}\n")
                status = 1
                continue
            with self.fs.open_read(norm) as handle:
                while chunk := handle.read(65536):
                    io.out(chunk.decode("utf-8", "surrogateescape"))
        return status

    def cmd_ls(self, args: list[str], io: _IO) -> int:
        long = False
        paths: list[str] = []
        for a in args:
            if a.startswith("-") and len(a) > 1:
                if set(a[1:]) - set("lah1"):
                    io.err(f"ls: Unknown option '{a}'\n")
                    return 1
                long = long or "l" in a
            else:
                paths.append(a)
        paths = paths or ["."]
        status = 0
        for index, path in enumerate(paths):
            norm = self.fs.normalize(path)
            if self.sysfs.is_virtual(norm):
                names = self.sysfs.listdir(norm)
                if names is None and self.sysfs.read(norm) is None:
                    io.err(f"ls: {path}: No such file or directory\n")
                    status = 1
                else:
                    io.out("".join(n + "\n" for n in names) if names is not None else path + "\n")
                continue
            st = self.fs.stat(norm)
            if st is None:
                io.err(f"ls: {path}: No such file or directory\n")
                status = 1
                continue
            if not st.is_dir:
                io.out(self._ls_line(path, st) if long else path + "\n")
                continue
            if len(paths) > 1:
                io.out(("\n" if index else "") + f"{path}:\n")
            entries = self.fs.listdir(norm)
            if long:
                blocks = sum(math.ceil(s.size / 1024) for _n, s in entries)
                io.out(f"total {blocks}\n" + "".join(self._ls_line(n, s) for n, s in entries))
            else:
                io.out("".join(n + "\n" for n, _s in entries))
        return status

    @staticmethod
    def _ls_line(name: str, st: DeviceStat) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.mtime))
        return f"{_mode_string(st)} 1 shell shell {st.size:>8} {stamp} {name}\n"

    def cmd_mkdir(self, args: list[str], io: _IO) -> int:
        parents = "-p" in args
        status = 0
        for path in (a for a in args if a != "-p"):
            norm = self.fs.normalize(path)
            if self.sysfs.is_virtual(norm):
                io.err(f"mkdir: '{path}': Read-only file system\n")
                status = 1
                continue
            try:
                self.fs.mkdir(norm, parents=parents)
            except FileExistsError:
                io.err(f"mkdir: '{path}': File exists\n")
                status = 1
            except FileNotFoundError:
                io.err(f"mkdir: '{path}': No such file or directory\n")
                status = 1
        return status

    def cmd_chmod(self, args: list[str], io: _IO) -> int:
        if len(args) < 2:
            io.err("chmod: Need 2 arguments\n")
            return 1
        spec, status = args[0], 0
        for path in args[1:]:
            norm = self.fs.normalize(path)
            st = None if self.sysfs.is_virtual(norm) else self.fs.stat(norm)
            if st is None:
                io.err(f"chmod: {path}: No such file or directory\n")
                status = 1
                continue
            new = _apply_mode(spec, st.permissions)
            if new is None:
                io.err(f"chmod: bad mode '{spec}'\n")
                return 1
            self.fs.set_mode(norm, new)
        return status

    def cmd_rm(self, args: list[str], io: _IO) -> int:
        flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
        force, recursive = "f" in flags, "r" in flags or "R" in flags
        status = 0
        for path in (a for a in args if not (a.startswith("-") and len(a) > 1)):
            norm = self.fs.normalize(path)
            if self.sysfs.is_virtual(norm):
                io.err(f"rm: {path}: Read-only file system\n")
                status = 1
                continue
            try:
                self.fs.remove(norm, recursive=recursive)
            except FileNotFoundError:
                if not force:
                    io.err(f"rm: {path}: No such file or directory\n")
                    status = 1
            except IsADirectoryError:
                io.err(f"rm: {path}: Is a directory\n")
                status = 1
        return status

    def cmd_sha256sum(self, args: list[str], io: _IO) -> int:
        status = 0
        for path in args:
            digest = hashlib.sha256()
            norm = self.fs.normalize(path)
            if self.sysfs.is_virtual(norm):
                text = self.sysfs.read(norm)
                if text is None:
                    io.err(f"sha256sum: {path}: No such file or directory\n")
                    status = 1
                    continue
                digest.update(text.encode())
            else:
                st = self.fs.stat(norm)
                if st is None or st.is_dir:
                    reason = "Is a directory" if st else "No such file or directory"
                    io.err(f"sha256sum: {path}: {reason}\n")
                    status = 1
                    continue
                with self.fs.open_read(norm) as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
            io.out(f"{digest.hexdigest()}  {path}\n")
        return status

    def cmd_df(self, args: list[str], io: _IO) -> int:
        rows = self.phone.mounts()
        chosen = rows
        paths = [a for a in args if not a.startswith("-")]
        if paths:
            chosen = []
            for path in paths:
                norm = self.fs.normalize(path)
                if not self.sysfs.is_virtual(norm) and self.fs.stat(norm) is None:
                    io.err(f"df: {path}: No such file or directory\n")
                    return 1
                chosen.append(max((r for r in rows if _under(norm, r.aliases)),
                                  key=lambda r: max(len(a) for a in r.aliases if _under(norm, (a,)))))
        io.out(f"{'Filesystem':<16} {'1K-blocks':>9} {'Used':>9} {'Available':>9} Use% Mounted on\n")
        for r in chosen:
            use = math.ceil(100 * r.used_kb / r.total_kb) if r.total_kb else 0
            io.out(f"{r.device:<16} {r.total_kb:>9} {r.used_kb:>9} {r.available_kb:>9} {use:>3}% {r.mount}\n")
        return 0

    def cmd_dumpsys(self, args: list[str], io: _IO) -> int:
        reports = {"battery": self.phone.battery_report, "thermalservice": self.sysfs.thermalservice_report}
        report = reports.get(args[0]) if args else None
        if report is None:
            io.err(f"Can't find service: {args[0] if args else ''}\n")
            return 1
        io.out(report())
        return 0

    def cmd_taskset(self, args: list[str], io: _IO) -> int:
        if len(args) < 2:
            io.err("usage: taskset [-p] [mask] [PID | cmd [args...]]\n")
            return 1
        try:
            mask = int(args[0], 16)
        except ValueError:
            io.err(f"taskset: bad mask '{args[0]}'\n")
            return 1
        # The kernel keeps the affinity inside the shell's cpuset; with none of the asked cpus
        # left, sched_setaffinity fails (EINVAL) and toybox says so with its own pid.
        cpus = {v for v in range(self.phone.cpu_count) if mask >> v & 1} & self.sysfs.shell_cpus()
        if not cpus:
            io.err(f"taskset: failed to set pid {_TOYBOX_PID}'s affinity: Invalid argument\n")
            return 1
        return self.execute(args[1:], _IO(io.out, io.err, io.cancelled, cpus))

    def cmd_pkill(self, args: list[str], io: _IO) -> int:
        full, sig, names = False, 15, []
        for a in args:
            if a == "-f":
                full = True
            elif a == "-x":
                pass  # exact process name: how names are matched here anyway
            elif a.startswith("-") and _signal_number(a[1:]) is not None:
                sig = _signal_number(a[1:]) or 15
            else:
                names.append(a)
        if not names:
            io.err("pkill: Need 1 argument\n")
            return 2
        killed = sum(self.phone.kill_matching(n, full=full, sig=sig) for n in names)
        return 0 if killed else 1

    def cmd_kill(self, args: list[str], io: _IO) -> int:
        sig, status = 15, 0
        for a in args:
            if a.startswith("-") and _signal_number(a[1:]) is not None:
                sig = _signal_number(a[1:]) or 15
            elif a.isdigit() and self.phone.kill_pid(int(a), sig):
                continue
            else:
                io.err(f"kill: {a}: No such process\n")
                status = 1
        return status

    def cmd_pidof(self, args: list[str], io: _IO) -> int:
        pids = [p for name in args for p in self.phone.pids_named(name)]
        if pids:
            io.out(" ".join(map(str, pids)) + "\n")
        return 0 if pids else 1

    def cmd_sleep(self, args: list[str], io: _IO) -> int:
        try:
            seconds = float(args[0])
        except (IndexError, ValueError):
            io.err("sleep: Need 1 argument\n")
            return 1
        return 130 if io.cancelled.wait(max(0.0, seconds)) else 0

    def cmd_uname(self, args: list[str], io: _IO) -> int:
        machine = {"arm64-v8a": "aarch64", "armeabi-v7a": "armv8l", "x86": "i686"}.get(
            self.phone.abi, self.phone.abi)
        if "-a" in args:
            io.out(f"Linux localhost 5.10.0-mnv3emu #1 SMP PREEMPT {machine} Toybox\n")
        elif "-m" in args:
            io.out(machine + "\n")
        elif "-r" in args:
            io.out("5.10.0-mnv3emu\n")
        else:
            io.out("Linux\n")
        return 0

    def cmd_nproc(self, args: list[str], io: _IO) -> int:
        io.out(f"{self.phone.cpu_count}\n")
        return 0

    def cmd_test(self, args: list[str], io: _IO) -> int:
        if args and args[-1] == "]":
            args = args[:-1]
        negate = bool(args) and args[0] == "!"
        args = args[1:] if negate else args
        if len(args) == 2 and args[0] in ("-e", "-f", "-d", "-x", "-s", "-r", "-w"):
            result = self._test_path(args[0], args[1])
        elif len(args) == 3 and args[1] in ("=", "!="):
            result = (args[0] == args[2]) == (args[1] == "=")
        elif len(args) == 1:
            result = args[0] != ""
        else:
            io.err("test: unsupported expression\n")
            return 2
        return 0 if result != negate else 1

    def _test_path(self, op: str, path: str) -> bool:
        norm = self.fs.normalize(path)
        if self.sysfs.is_virtual(norm):
            text = self.sysfs.read(norm)
            return {"-d": self.sysfs.is_dir(norm), "-e": text is not None or self.sysfs.is_dir(norm),
                    "-f": text is not None, "-r": text is not None, "-s": bool(text)}.get(op, False)
        st = self.fs.stat(norm)
        if st is None:
            return False
        return {"-e": True, "-f": st.is_file, "-d": st.is_dir, "-r": True, "-w": True,
                "-x": bool(st.permissions & 0o111), "-s": st.size > 0}[op]


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(p == "/" or path == p or path.startswith(p + "/") for p in prefixes)


def _signal_number(name: str) -> int | None:
    names = {"TERM": 15, "SIGTERM": 15, "KILL": 9, "SIGKILL": 9, "INT": 2, "SIGINT": 2,
             "HUP": 1, "SIGHUP": 1}
    if name.isdigit():
        return int(name)
    return names.get(name.upper())


def _apply_mode(spec: str, current: int) -> int | None:
    """chmod's MODE: octal (755) or symbolic ([ugoa]*[+-=][rwx]*, comma separated)."""
    if spec and all(c in "01234567" for c in spec):
        return int(spec, 8) & 0o7777
    mode = current
    for clause in spec.split(","):
        who = ""
        while clause and clause[0] in "ugoa":
            who, clause = who + clause[0], clause[1:]
        if not clause or clause[0] not in "+-=" or set(clause[1:]) - set("rwx"):
            return None
        op, perms = clause[0], clause[1:]
        who = who.replace("a", "ugo") or "ugo"
        bits = 0
        for w in who:
            shift = {"u": 6, "g": 3, "o": 0}[w]
            for p in perms:
                bits |= {"r": 4, "w": 2, "x": 1}[p] << shift
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            for w in who:
                mode &= ~(0o7 << {"u": 6, "g": 3, "o": 0}[w])
            mode |= bits
    return mode
