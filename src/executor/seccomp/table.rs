//! Docker's default seccomp profile, as hoist's own table.
//!
//! The facts are those of Docker's default profile (moby `profiles/seccomp`, release
//! `seccomp/v0.2.3`, commit 3c28324314729dbade8287e868eef6338c42807a), restated as typed Rust:
//! calls allowed everywhere ([`ALWAYS_ALLOWED`]), then rules that hold only past a kernel
//! version, for some argument values, on some architectures, or for some capabilities. The
//! filter is an allow-list: a call no kept rule allows fails with [`DEFAULT_ERRNO`].
//!
//! [`render`] evaluates the conditions for one sandbox and host into the runtime's
//! `linux.seccomp`, in the order the rules are listed here. To follow a newer Docker release,
//! edit the table and the fixed expectations in `tests.rs`.

use super::Host;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// What a rule does with the calls it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// The call runs.
    Allow,
    /// The call fails with this errno.
    Fail(u32),
}

/// A test on one argument of the call (`arg` counts from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgCond {
    /// `args[arg] < value`.
    Less { arg: usize, value: u64 },
    /// `args[arg] == value`.
    Equal { arg: usize, value: u64 },
    /// `args[arg] > value`.
    Greater { arg: usize, value: u64 },
    /// None of the bits of `mask` are set in `args[arg]`.
    NoBitsOf { arg: usize, mask: u64 },
}

/// When a rule is part of the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    /// Always.
    Always,
    /// The sandbox has this capability (`CAP_…`).
    Cap(&'static str),
    /// The sandbox lacks this capability.
    NoCap(&'static str),
    /// The host is one of these architectures (Docker's names: `amd64`, `arm64`, …).
    Arch(&'static [&'static str]),
    /// The host is none of these architectures.
    NotArch(&'static [&'static str]),
    /// The host kernel is at least this version and major revision.
    Kernel(u64, u64),
    /// Every one of these holds.
    All(&'static [When]),
}

/// One rule: the calls it names, what happens to them, for which arguments (all must match;
/// none: any), and when the rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rule {
    /// The syscalls (sorted).
    pub names: &'static [&'static str],
    /// What happens to a matching call.
    pub action: Action,
    /// Tests every one of which the call's arguments must pass.
    pub args: &'static [ArgCond],
    /// When the rule is part of the filter.
    pub when: When,
}

/// A rule allowing `names` when `when` holds, whatever the arguments.
const fn allow(names: &'static [&'static str], when: When) -> Rule {
    Rule {
        names,
        action: Action::Allow,
        args: &[],
        when,
    }
}

/// A rule allowing `names` whenever their arguments pass `args`.
const fn allow_args(names: &'static [&'static str], args: &'static [ArgCond]) -> Rule {
    Rule {
        names,
        action: Action::Allow,
        args,
        when: When::Always,
    }
}

/// `EPERM`: what a call outside the allow-list gets.
const EPERM: u32 = 1;
/// `ENOSYS`: "no such call", so that libc falls back to an older call (the generic Linux
/// number, on every architecture, as Docker's profile has it).
const ENOSYS: u32 = 38;

/// Docker's names of the s390 architectures.
const S390: &[&str] = &["s390", "s390x"];

/// The errno every call no rule allows fails with.
pub(super) const DEFAULT_ERRNO: u32 = EPERM;

/// A host architecture and the ones its kernel also runs; the filter covers all of them.
pub(super) const ARCH_FAMILIES: &[(Arch, &[Arch])] = &[
    (
        Arch::ScmpArchX86_64,
        &[Arch::ScmpArchX86, Arch::ScmpArchX32],
    ),
    (Arch::ScmpArchAarch64, &[Arch::ScmpArchArm]),
    (
        Arch::ScmpArchMips64,
        &[Arch::ScmpArchMips, Arch::ScmpArchMips64n32],
    ),
    (
        Arch::ScmpArchMips64n32,
        &[Arch::ScmpArchMips, Arch::ScmpArchMips64],
    ),
    (
        Arch::ScmpArchMipsel64,
        &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64n32],
    ),
    (
        Arch::ScmpArchMipsel64n32,
        &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64],
    ),
    (Arch::ScmpArchS390x, &[Arch::ScmpArchS390]),
    (Arch::ScmpArchRiscv64, &[]),
    (Arch::ScmpArchLoongarch64, &[]),
];

/// Calls allowed to every sandbox on every host (sorted; a name for another architecture
/// simply matches nothing there).
#[rustfmt::skip]
pub(super) const ALWAYS_ALLOWED: &[&str] = &[
    "_llseek", "_newselect", "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk",
    "cachestat", "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
    "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2",
    "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr",
    "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64",
    "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
    "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_robust_list",
    "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid",
    "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
    "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr", "listxattrat",
    "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
    "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename",
    "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "set_robust_list",
    "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
    "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority",
    "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid",
    "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32", "setxattr",
    "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
];

/// Allowed from Linux 4.8 on, where a tracer can no longer step around the filter.
pub(super) const KERNEL_GATED: &[Rule] = &[allow(
    &["process_vm_readv", "process_vm_writev", "ptrace"],
    When::Kernel(4, 8),
)];

/// `socket` address families (`socket(2)`'s first argument).
const AF_ALG: u64 = 38;
const AF_NFC: u64 = 39;
const AF_VSOCK: u64 = 40;

/// `personality(2)` values: Linux, 32-bit Linux, `UNAME26` with each, and the query.
const PER_LINUX: u64 = 0x0;
const PER_LINUX32: u64 = 0x8;
const UNAME26: u64 = 0x2_0000;
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

/// Calls allowed only for some argument values: every socket family but `AF_ALG` and
/// `AF_VSOCK`, and the personalities above.
#[rustfmt::skip]
pub(super) const ARG_FILTERED: &[Rule] = &[
    allow_args(&["socket"], &[ArgCond::Less { arg: 0, value: AF_ALG }]),
    allow_args(&["socket"], &[ArgCond::Equal { arg: 0, value: AF_NFC }]),
    allow_args(&["socket"], &[ArgCond::Greater { arg: 0, value: AF_VSOCK }]),
    allow_args(&["personality"], &[ArgCond::Equal { arg: 0, value: PER_LINUX }]),
    allow_args(&["personality"], &[ArgCond::Equal { arg: 0, value: PER_LINUX32 }]),
    allow_args(&["personality"], &[ArgCond::Equal { arg: 0, value: UNAME26 }]),
    allow_args(&["personality"], &[ArgCond::Equal { arg: 0, value: UNAME26 | PER_LINUX32 }]),
    allow_args(&["personality"], &[ArgCond::Equal { arg: 0, value: PERSONALITY_QUERY }]),
];

/// Architecture-specific calls, allowed on the architectures that have them.
#[rustfmt::skip]
pub(super) const ARCH_GATED: &[Rule] = &[
    allow(&["swapcontext", "sync_file_range2"], When::Arch(&["ppc64le"])),
    allow(
        &["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
          "sync_file_range2"],
        When::Arch(&["arm", "arm64"]),
    ),
    allow(&["arch_prctl"], When::Arch(&["amd64", "x32"])),
    allow(&["modify_ldt"], When::Arch(&["amd64", "x32", "x86"])),
    allow(&["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"], When::Arch(S390)),
    allow(&["riscv_flush_icache"], When::Arch(&["riscv64"])),
];

/// The `clone` flags that create namespaces.
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
pub(super) const CLONE_NAMESPACE_FLAGS: u64 = CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// Calls allowed with a capability. Without `CAP_SYS_ADMIN`, `clone` may not create
/// namespaces (its flags are the second argument on s390), and `clone3`, whose flags a filter
/// cannot see, says it does not exist so that libc falls back to `clone`.
#[rustfmt::skip]
pub(super) const CAP_GATED: &[Rule] = &[
    allow(&["open_by_handle_at"], When::Cap("CAP_DAC_READ_SEARCH")),
    allow(
        &["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
          "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr",
          "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
          "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
          "umount2", "unshare"],
        When::Cap("CAP_SYS_ADMIN"),
    ),
    Rule {
        names: &["clone"],
        action: Action::Allow,
        args: &[ArgCond::NoBitsOf { arg: 0, mask: CLONE_NAMESPACE_FLAGS }],
        when: When::All(&[When::NoCap("CAP_SYS_ADMIN"), When::NotArch(S390)]),
    },
    Rule {
        names: &["clone"],
        action: Action::Allow,
        args: &[ArgCond::NoBitsOf { arg: 1, mask: CLONE_NAMESPACE_FLAGS }],
        when: When::All(&[When::Arch(S390), When::NoCap("CAP_SYS_ADMIN")]),
    },
    Rule {
        names: &["clone3"],
        action: Action::Fail(ENOSYS),
        args: &[],
        when: When::NoCap("CAP_SYS_ADMIN"),
    },
    allow(&["reboot"], When::Cap("CAP_SYS_BOOT")),
    allow(&["chroot"], When::Cap("CAP_SYS_CHROOT")),
    allow(&["delete_module", "finit_module", "init_module"], When::Cap("CAP_SYS_MODULE")),
    allow(&["acct"], When::Cap("CAP_SYS_PACCT")),
    allow(
        &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
          "ptrace"],
        When::Cap("CAP_SYS_PTRACE"),
    ),
    allow(&["ioperm", "iopl"], When::Cap("CAP_SYS_RAWIO")),
    allow(
        &["clock_settime", "clock_settime64", "settimeofday", "stime"],
        When::Cap("CAP_SYS_TIME"),
    ),
    allow(&["vhangup"], When::Cap("CAP_SYS_TTY_CONFIG")),
    allow(
        &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
        When::Cap("CAP_SYS_NICE"),
    ),
    allow(&["syslog"], When::Cap("CAP_SYSLOG")),
    allow(&["bpf"], When::Cap("CAP_BPF")),
    allow(&["perf_event_open"], When::Cap("CAP_PERFMON")),
];

/// The conditional rules, in the order they are rendered (after [`ALWAYS_ALLOWED`]).
pub(super) const CONDITIONAL: &[&[Rule]] = &[KERNEL_GATED, ARG_FILTERED, ARCH_GATED, CAP_GATED];

impl When {
    /// Whether the condition holds for a sandbox with `caps` on `host`.
    fn holds(&self, caps: &[String], host: &Host) -> bool {
        let has = |cap: &str| caps.iter().any(|c| c == cap);
        match *self {
            When::Always => true,
            When::Cap(c) => has(c),
            When::NoCap(c) => !has(c),
            When::Arch(a) => a.contains(&host.arch),
            When::NotArch(a) => !a.contains(&host.arch),
            When::Kernel(k, m) => host.kernel >= (k, m),
            When::All(all) => all.iter().all(|w| w.holds(caps, host)),
        }
    }
}

impl ArgCond {
    /// The runtime spec's form of the test.
    fn to_oci(self) -> LinuxSeccompArg {
        let (arg, value, op) = match self {
            ArgCond::Less { arg, value } => (arg, value, LinuxSeccompOperator::ScmpCmpLt),
            ArgCond::Equal { arg, value } => (arg, value, LinuxSeccompOperator::ScmpCmpEq),
            ArgCond::Greater { arg, value } => (arg, value, LinuxSeccompOperator::ScmpCmpGt),
            // The runtime compares `args[arg] & value` with `valueTwo`, which defaults to 0.
            ArgCond::NoBitsOf { arg, mask } => (arg, mask, LinuxSeccompOperator::ScmpCmpMaskedEq),
        };
        LinuxSeccompArgBuilder::default()
            .index(arg)
            .value(value)
            .op(op)
            .build()
            // Every field has a default, so building cannot fail.
            .expect("a complete seccomp argument test")
    }
}

impl Rule {
    /// The runtime spec's form of the rule.
    fn to_oci(self) -> LinuxSyscall {
        let mut s = LinuxSyscall::default();
        s.set_names(self.names.iter().map(|n| n.to_string()).collect());
        let (action, errno) = match self.action {
            Action::Allow => (LinuxSeccompAction::ScmpActAllow, None),
            Action::Fail(e) => (LinuxSeccompAction::ScmpActErrno, Some(e)),
        };
        s.set_action(action);
        s.set_errno_ret(errno);
        let args: Vec<_> = self.args.iter().map(|a| a.to_oci()).collect();
        s.set_args((!args.is_empty()).then_some(args));
        s
    }
}

/// The default filter for a sandbox with capabilities `caps` (bounding set) on `host`: the
/// host's architecture family, the always-allowed calls, then every conditional rule whose
/// condition holds.
pub(super) fn render(caps: &[String], host: &Host) -> LinuxSeccomp {
    let arches: Vec<Arch> = ARCH_FAMILIES
        .iter()
        .find(|(a, _)| Some(*a) == host.seccomp_arch)
        .map(|(a, subs)| std::iter::once(*a).chain(subs.iter().copied()).collect())
        .unwrap_or_default();
    let always = allow(ALWAYS_ALLOWED, When::Always);
    let syscalls = std::iter::once(always)
        .chain(CONDITIONAL.iter().copied().flatten().copied())
        .filter(|r| r.when.holds(caps, host))
        .map(Rule::to_oci)
        .collect();
    let mut out = LinuxSeccomp::default();
    out.set_default_action(LinuxSeccompAction::ScmpActErrno);
    out.set_default_errno_ret(Some(DEFAULT_ERRNO));
    out.set_architectures((!arches.is_empty()).then_some(arches));
    out.set_syscalls(Some(syscalls));
    out
}
