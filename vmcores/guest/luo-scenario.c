// SPDX-License-Identifier: MIT
/*
 * luo-scenario: PID 1 of the fixture guests.
 *
 * Drives /dev/liveupdate through its ioctls and prints every step on the
 * console as one line "@@LUO {json}".  That log is the ground truth of each
 * fixture: the manifest's expected state is parsed from it, never from what
 * an inspector reads back.
 *
 * The scenario comes from the kernel command line (unknown key=value boot
 * parameters reach PID 1 as environment variables):
 *   luo_scenario=outgoing|frozen|incoming|incoming-pending|disabled|no-luo|
 *                crowded|doomed|journey|journey-drop|loaded|loaded-legacy|
 *                second|sealed|byte-names (initramfs) or
 *                live-crowded|live-doomed|flb|flb-finished (kernel `full`)|
 *                holders|warn (kernel `full`; panic
 *                into the capture kernel)|capture (PID 1 of that kernel)
 *                (initramfs fixtures) or live|churn (live mode, started by
 *                an init script on the host's root over 9p)|
 *                scale (many sessions and fds, for the benchmark)
 *   luo_phase=1 (before the kexec), 2 (after it) or 3 (after second's
 *                second kexec)
 *   luo_kernel=PATH: the kernel to kexec into, without an initrd (live)
 *   luo_scale=SESSIONS,FILES,PROCS: the shape of scenario scale
 *
 * When the state to capture is reached the driver prints "@@LUO-READY name"
 * and sleeps; the runner dumps guest memory then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/iommufd.h>
#include <linux/liveupdate.h>
#include <linux/loop.h>
#include <linux/reboot.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KEXEC_FILE_NO_INITRAMFS
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#endif
#ifndef KEXEC_FILE_ON_CRASH
#define KEXEC_FILE_ON_CRASH 0x00000002
#endif

static void emit(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("@@LUO %s\n", buf);
	fflush(stdout);
}

static void ready(const char *what)
{
	printf("@@LUO-READY %s\n", what);
	fflush(stdout);
}

static void hang(void)
{
	for (;;)
		pause();
}

static const char *errname(int err)
{
	switch (err) {
	case 0: return "OK";
	case EEXIST: return "EEXIST";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EBADF: return "EBADF";
	case EPERM: return "EPERM";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	case ENOMEM: return "ENOMEM";
	default: return "E?";
	}
}

/* ---- /dev/liveupdate wrappers: each returns 0 or -errno ---- */

static int luo_create_session(int luo_fd, const char *name, int *out_fd)
{
	struct liveupdate_ioctl_create_session arg = { .size = sizeof(arg) };

	strncpy((char *)arg.name, name, sizeof(arg.name) - 1);
	if (ioctl(luo_fd, LIVEUPDATE_IOCTL_CREATE_SESSION, &arg) < 0)
		return -errno;
	*out_fd = arg.fd;
	return 0;
}

static int luo_retrieve_session(int luo_fd, const char *name, int *out_fd)
{
	struct liveupdate_ioctl_retrieve_session arg = { .size = sizeof(arg) };

	strncpy((char *)arg.name, name, sizeof(arg.name) - 1);
	if (ioctl(luo_fd, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &arg) < 0)
		return -errno;
	*out_fd = arg.fd;
	return 0;
}

static int luo_preserve_fd(int session_fd, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd arg = {
		.size = sizeof(arg), .fd = fd, .token = token,
	};

	return ioctl(session_fd, LIVEUPDATE_SESSION_PRESERVE_FD, &arg) < 0 ? -errno : 0;
}

static int luo_retrieve_fd(int session_fd, uint64_t token, int *out_fd)
{
	struct liveupdate_session_retrieve_fd arg = {
		.size = sizeof(arg), .token = token,
	};

	if (ioctl(session_fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &arg) < 0)
		return -errno;
	*out_fd = arg.fd;
	return 0;
}

static int luo_finish(int session_fd)
{
	struct liveupdate_session_finish arg = { .size = sizeof(arg) };

	return ioctl(session_fd, LIVEUPDATE_SESSION_FINISH, &arg) < 0 ? -errno : 0;
}

/*
 * A session name as the log's JSON carries it: bytes at or above 0x80 as
 * \xNN and a backslash doubled, both JSON-escaped (the names are compared
 * as bytes by the kernel; the inspector shows bytes that are not UTF-8 the
 * same way).  Plain ASCII names are logged as they are.
 */
static const char *label(const char *name)
{
	static char bufs[4][512];
	static int next;
	char *out = bufs[next++ % 4];
	size_t len = 0;

	for (const unsigned char *c = (const unsigned char *)name; *c && len < 500; c++) {
		if (*c == '\\')
			len += snprintf(out + len, 512 - len, "\\\\\\\\");
		else if (*c >= 0x80)
			len += snprintf(out + len, 512 - len, "\\\\x%02x", *c);
		else
			out[len++] = (char)*c;
	}
	out[len] = 0;
	return out;
}

/* ---- logged steps ---- */

static int open_luo(void)
{
	int fd = open("/dev/liveupdate", O_RDWR);
	int err = fd < 0 ? errno : 0;

	emit("{\"op\":\"open_luo\",\"pid\":%d,\"fd\":%d,\"result\":\"%s\"}",
	     getpid(), fd, errname(err));
	return fd;
}

static int create_session(int luo_fd, const char *name)
{
	int fd = -1;
	int err = luo_create_session(luo_fd, name, &fd);

	emit("{\"op\":\"create_session\",\"pid\":%d,\"session\":\"%s\",\"fd\":%d,\"result\":\"%s\"}",
	     getpid(), label(name), err ? -1 : fd, errname(-err));
	return err ? -1 : fd;
}

/*
 * A memfd of @size bytes filled with a pattern derived from @seed, so the
 * incoming side can check that the content survived.
 */
static int make_memfd(const char *name, size_t size, unsigned int seed)
{
	int fd = memfd_create(name, MFD_ALLOW_SEALING);
	struct stat st;
	char page[4096];

	for (size_t off = 0; off < size; off += sizeof(page)) {
		size_t n = size - off < sizeof(page) ? size - off : sizeof(page);

		for (size_t i = 0; i < n; i++)
			page[i] = (char)(seed + off + i);
		if (write(fd, page, n) != (ssize_t)n)
			perror("write");
	}
	fstat(fd, &st);
	emit("{\"op\":\"memfd\",\"pid\":%d,\"name\":\"%s\",\"fd\":%d,\"ino\":%lu,\"size\":%zu,\"seed\":%u}",
	     getpid(), name, fd, (unsigned long)st.st_ino, size, seed);
	return fd;
}

static int preserve(int session_fd, const char *session, int fd, uint64_t token)
{
	int err = luo_preserve_fd(session_fd, fd, token);

	emit("{\"op\":\"preserve\",\"pid\":%d,\"session\":\"%s\",\"fd\":%d,\"token\":%llu,\"result\":\"%s\"}",
	     getpid(), label(session), fd, (unsigned long long)token, errname(-err));
	return err;
}

static void *map_shared(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	emit("{\"op\":\"mmap\",\"pid\":%d,\"fd\":%d,\"addr\":%lu,\"size\":%zu,\"result\":\"%s\"}",
	     getpid(), fd, (unsigned long)p, size, p == MAP_FAILED ? errname(errno) : "OK");
	return p;
}

static int dup_fd(int fd)
{
	int nfd = dup(fd);

	emit("{\"op\":\"dup\",\"pid\":%d,\"fd\":%d,\"new_fd\":%d}", getpid(), fd, nfd);
	return nfd;
}

static void resize(int fd, size_t size)
{
	int err = ftruncate(fd, size) ? errno : 0;

	emit("{\"op\":\"resize\",\"pid\":%d,\"fd\":%d,\"size\":%zu,\"result\":\"%s\"}",
	     getpid(), fd, size, errname(err));
}

/* F_ADD_SEALS on @fd (a memfd made with MFD_ALLOW_SEALING). */
static void add_seals(int fd, int seals)
{
	int err = fcntl(fd, F_ADD_SEALS, seals) ? errno : 0;

	emit("{\"op\":\"add_seals\",\"pid\":%d,\"fd\":%d,\"seals\":%d,\"now\":%d,\"result\":\"%s\"}",
	     getpid(), fd, seals, fcntl(fd, F_GET_SEALS), errname(err));
}

static void close_fd(int fd)
{
	close(fd);
	emit("{\"op\":\"close\",\"pid\":%d,\"fd\":%d}", getpid(), fd);
}

static pid_t fork_holder(void)
{
	pid_t pid = fork();

	if (pid == 0)
		hang();	/* the child only holds copies of every fd and mapping */
	emit("{\"op\":\"fork\",\"pid\":%d,\"child\":%d}", getpid(), pid);
	return pid;
}

/*
 * The outgoing state every scenario of phase 1 builds:
 *   vm-alpha: three memfds, 0x100 dup'ed, 0x101 mapped shared, 0x102 whose
 *             fd is closed after preserve (only LUO holds it);
 *   vm-beta:  token 0x100 again (legal in another session) and 0x200;
 *   vm-gamma: two memfds, retrieved and finished after the kexec;
 *   empty:    no files.
 * The kernel's refusals are exercised and logged: EEXIST for a duplicate
 * token in one session, EBUSY for preserving an already preserved memfd,
 * EEXIST for a duplicate session name.  Returns vm-alpha 0x100's fd.
 */
static int build_outgoing(int luo_fd)
{
	int alpha = create_session(luo_fd, "vm-alpha");
	int beta = create_session(luo_fd, "vm-beta");
	int gamma = create_session(luo_fd, "vm-gamma");
	int a0, a1, a2, b0, b1, g0, g1, extra;

	create_session(luo_fd, "empty");
	create_session(luo_fd, "vm-alpha");	/* EEXIST */

	a0 = make_memfd("alpha-0", 8192, 1);
	a1 = make_memfd("alpha-1", 3 * 4096, 2);
	a2 = make_memfd("alpha-2", 100, 3);
	b0 = make_memfd("beta-0", 4096, 4);
	b1 = make_memfd("beta-1", 5 * 4096, 5);
	g0 = make_memfd("gamma-0", 4096, 6);
	g1 = make_memfd("gamma-1", 2 * 4096, 7);
	extra = make_memfd("refused", 4096, 8);

	preserve(alpha, "vm-alpha", a0, 0x100);
	preserve(alpha, "vm-alpha", a1, 0x101);
	preserve(alpha, "vm-alpha", a2, 0x102);
	preserve(beta, "vm-beta", b0, 0x100);
	preserve(beta, "vm-beta", b1, 0x200);
	preserve(gamma, "vm-gamma", g0, 0x300);
	preserve(gamma, "vm-gamma", g1, 0x301);

	preserve(alpha, "vm-alpha", extra, 0x101);	/* EEXIST: token in use */
	preserve(beta, "vm-beta", a0, 0x201);		/* EBUSY: memfd preserved */
	close_fd(extra);

	dup_fd(a0);
	map_shared(a1, 3 * 4096);
	close_fd(a2);
	fork_holder();
	return a0;
}

/*
 * The kernel and initrd to kexec into are only needed until they are
 * loaded.  Unlinked from the rootfs, their pages are freed, and zeroed with
 * init_on_free=1, which keeps the vmcores small.
 */
static void drop_kexec_images(void)
{
	unlink("/kernel");
	unlink("/initrd.img");
}

/*
 * The next kernel's command line: this kernel's with luo_phase= set to
 * @next_phase (and luo_next='s words, below).
 */
static void next_cmdline(const char *next_phase, char *next, size_t size)
{
	char cmdline[2048];
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
	char *p;

	close(fd);
	cmdline[n > 0 ? n : 0] = 0;
	p = strchr(cmdline, '\n');
	if (p)
		*p = 0;
	/* The next phase runs the same scenario in the new kernel. */
	p = strstr(cmdline, "luo_phase=");
	if (p)
		p[10] = next_phase[0];
	if (getenv("luo_next")) {
		/*
		 * luo_next=A,B: the next kernel boots with this one's command
		 * line less its liveupdate= and kho=, plus A B (what preflight
		 * is asked about: kho=off, liveupdate=1, a later liveupdate=0).
		 */
		char *word, *save;
		size_t len = 0;

		next[0] = 0;
		for (word = strtok_r(cmdline, " ", &save); word;
		     word = strtok_r(NULL, " ", &save)) {
			if (!strncmp(word, "liveupdate=", 11) || !strncmp(word, "kho=", 4) ||
			    !strncmp(word, "luo_next=", 9))
				continue;
			len += snprintf(next + len, size - len, "%s ", word);
		}
		for (p = (char *)getenv("luo_next"); *p && len < size - 1; p++)
			next[len++] = *p == ',' ? ' ' : *p;
		next[len] = 0;
	} else {
		snprintf(next, size, "%s", cmdline);
	}
}

/* Load the next kernel with kexec_file_load() (kexec -s -l). */
static int kexec_load_next(const char *next_phase)
{
	char next[2200];
	const char *kernel = getenv("luo_kernel");
	int kernel_fd = open(kernel ? kernel : "/kernel", O_RDONLY);
	int initrd_fd = kernel ? -1 : open("/initrd.img", O_RDONLY);
	long ret;

	next_cmdline(next_phase, next, sizeof(next));
	/* Live mode boots the host's root over 9p: no initrd. */
	ret = syscall(SYS_kexec_file_load, kernel_fd, initrd_fd,
		      strlen(next) + 1, next,
		      initrd_fd < 0 ? KEXEC_FILE_NO_INITRAMFS : 0UL);
	close(kernel_fd);
	if (initrd_fd >= 0)
		close(initrd_fd);
	drop_kexec_images();
	emit("{\"op\":\"kexec_load\",\"result\":\"%s\"}", ret ? errname(errno) : "OK");
	return ret ? -1 : 0;
}

/*
 * Load the next kernel as kexec-tools' kexec -l -c does: the legacy
 * kexec_load() syscall, segments built in userspace (/sbin/kexec, put in
 * the initramfs of scenario loaded-legacy).
 */
static int kexec_load_legacy(const char *next_phase)
{
	char next[2200];
	char append[2300];
	int status = -1;
	pid_t pid;

	next_cmdline(next_phase, next, sizeof(next));
	snprintf(append, sizeof(append), "--command-line=%s", next);
	pid = fork();
	if (pid == 0) {
		execl("/sbin/kexec", "kexec", "-l", "-c", "--initrd=/initrd.img", append,
		      "/kernel", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	drop_kexec_images();
	status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	emit("{\"op\":\"kexec_load\",\"syscall\":\"kexec_load\",\"status\":%d,\"result\":\"%s\"}",
	     status, status ? "E?" : "OK");
	return status ? -1 : 0;
}

/* kexec -e: LUO freezes and serializes, then the loaded kernel boots. */
static int kexec_reboot(void)
{
	emit("{\"op\":\"kexec_reboot\"}");
	sync();
	reboot(LINUX_REBOOT_CMD_KEXEC);
	emit("{\"op\":\"kexec_reboot\",\"result\":\"%s\"}", errname(errno));
	return -1;
}

static int kexec_next(const char *next_phase)
{
	if (kexec_load_next(next_phase))
		return -1;
	return kexec_reboot();
}

/* Check that a retrieved memfd still holds the pattern written before kexec. */
static int content_ok(int fd, size_t size, unsigned int seed)
{
	char page[4096];
	struct stat st;

	if (fstat(fd, &st) || (size_t)st.st_size != size)
		return 0;
	for (size_t off = 0; off < size; off += sizeof(page)) {
		size_t n = size - off < sizeof(page) ? size - off : sizeof(page);

		if (pread(fd, page, n, off) != (ssize_t)n)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (page[i] != (char)(seed + off + i))
				return 0;
	}
	return 1;
}

static int retrieve_session(int luo_fd, const char *name)
{
	int fd = -1;
	int err = luo_retrieve_session(luo_fd, name, &fd);

	emit("{\"op\":\"retrieve_session\",\"pid\":%d,\"session\":\"%s\",\"fd\":%d,\"result\":\"%s\"}",
	     getpid(), label(name), err ? -1 : fd, errname(-err));
	return err ? -1 : fd;
}

static int retrieve(int session_fd, const char *session, uint64_t token,
		    size_t size, unsigned int seed)
{
	int fd = -1;
	int err = luo_retrieve_fd(session_fd, token, &fd);
	struct stat st = { 0 };
	int seals = -1;

	if (!err) {
		fstat(fd, &st);
		seals = fcntl(fd, F_GET_SEALS);
	}
	emit("{\"op\":\"retrieve\",\"pid\":%d,\"session\":\"%s\",\"token\":%llu,\"fd\":%d,\"ino\":%lu,\"content_ok\":%s,\"seals\":%d,\"result\":\"%s\"}",
	     getpid(), label(session), (unsigned long long)token, err ? -1 : fd,
	     (unsigned long)st.st_ino,
	     !err && content_ok(fd, size, seed) ? "true" : "false", seals, errname(-err));
	return err ? -1 : fd;
}

static void finish(int session_fd, const char *session)
{
	int err = luo_finish(session_fd);

	emit("{\"op\":\"finish\",\"pid\":%d,\"session\":\"%s\",\"result\":\"%s\"}",
	     getpid(), label(session), errname(-err));
}

/*
 * After the live update: vm-alpha retrieved with 0x100 and 0x101 retrieved
 * and 0x102 left waiting, plus a failed retrieve of an unknown token;
 * vm-gamma retrieved, all files retrieved, finished; vm-beta and empty left
 * alone.
 */
static void build_incoming(int luo_fd)
{
	int alpha = retrieve_session(luo_fd, "vm-alpha");
	int gamma = retrieve_session(luo_fd, "vm-gamma");

	retrieve(alpha, "vm-alpha", 0x100, 8192, 1);
	retrieve(alpha, "vm-alpha", 0x101, 3 * 4096, 2);
	retrieve(alpha, "vm-alpha", 0x999, 0, 0);	/* ENOENT */
	retrieve(gamma, "vm-gamma", 0x300, 4096, 6);
	retrieve(gamma, "vm-gamma", 0x301, 2 * 4096, 7);
	finish(gamma, "vm-gamma");
}

/*
 * crowded, doomed: @n sessions, the first two with a memfd each, then the
 * first name again (EEXIST).  In 7.2.13 luo_session_insert() grows the
 * outgoing block set before its duplicate-name check and the refusal never
 * shrinks it: at 51 sessions (one full block) that leaves an empty block
 * linked, which the next kernel rejects at boot.  50 sessions stay clear.
 */
static void build_crowd(int luo_fd, int n)
{
	char name[64];

	for (int i = 0; i < n; i++) {
		int session;

		snprintf(name, sizeof(name), "crowd-%02d", i);
		session = create_session(luo_fd, name);
		if (i < 2)
			preserve(session, name, make_memfd(name, 4096 * (i + 1), 9 + i), 0x100);
	}
	create_session(luo_fd, "crowd-00");	/* EEXIST */
}

static void retrieve_crowd(int luo_fd)
{
	int s0 = retrieve_session(luo_fd, "crowd-00");
	int s1 = retrieve_session(luo_fd, "crowd-01");

	retrieve(s0, "crowd-00", 0x100, 4096, 9);
	retrieve(s1, "crowd-01", 0x100, 8192, 10);
}

/*
 * second, boot 2: a host's second live update.  vm-alpha is retrieved with
 * 0x100 and 0x101 (0x101 then grown by the application: a retrieved file is
 * not frozen) and 0x102 left waiting; vm-gamma is retrieved whole and
 * finished, and its two memfds are preserved again, with a new one, in a
 * new outgoing session of the same name; a new outgoing vm-alpha keeps a
 * new memfd (its retrieved 0x100 is refused: EBUSY, luo_preserve_file()
 * finds it among the preserved files until vm-alpha is finished); vm-beta
 * and empty are never retrieved.
 */
static void build_second_update(int luo_fd)
{
	int alpha = retrieve_session(luo_fd, "vm-alpha");
	int gamma = retrieve_session(luo_fd, "vm-gamma");
	int a0 = retrieve(alpha, "vm-alpha", 0x100, 8192, 1);
	int a1 = retrieve(alpha, "vm-alpha", 0x101, 3 * 4096, 2);
	int g0 = retrieve(gamma, "vm-gamma", 0x300, 4096, 6);
	int g1 = retrieve(gamma, "vm-gamma", 0x301, 2 * 4096, 7);
	int next_gamma, next_alpha;

	resize(a1, 4 * 4096);
	finish(gamma, "vm-gamma");
	next_gamma = create_session(luo_fd, "vm-gamma");
	preserve(next_gamma, "vm-gamma", g0, 0x300);
	preserve(next_gamma, "vm-gamma", g1, 0x301);
	preserve(next_gamma, "vm-gamma", make_memfd("gamma-2", 4096, 18), 0x302);
	next_alpha = create_session(luo_fd, "vm-alpha");
	preserve(next_alpha, "vm-alpha", a0, 0x100);	/* EBUSY: still incoming */
	preserve(next_alpha, "vm-alpha", make_memfd("alpha-next", 2 * 4096, 19), 0x110);
}

/*
 * finish-early, after the live update: vm-alpha retrieved with only 0x100,
 * dumped (@@LUO-READY); then LIVEUPDATE_SESSION_FINISH with 0x101 and 0x102
 * never retrieved, and a retrieve of 0x101 after it; then an agent killed
 * with vm-beta's session fd open, and vm-beta asked for again.
 */
static void finish_early(int luo_fd, const char *scenario)
{
	int alpha = retrieve_session(luo_fd, "vm-alpha");
	pid_t child;

	retrieve(alpha, "vm-alpha", 0x100, 8192, 1);
	ready(scenario);
	sleep(3);	/* the host dumps this state meanwhile */
	finish(alpha, "vm-alpha");
	retrieve(alpha, "vm-alpha", 0x101, 3 * 4096, 2);
	child = fork();
	if (child == 0) {
		retrieve_session(luo_fd, "vm-beta");
		hang();
	}
	sleep(1);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	emit("{\"op\":\"killed\",\"pid\":%d,\"child\":%d}", getpid(), child);
	retrieve_session(luo_fd, "vm-beta");
	printf("@@LUO-DONE %s\n", scenario);
	fflush(stdout);
	hang();
}

/* second, boot 3: what arrived of both updates. */
static void retrieve_second_update(int luo_fd)
{
	static const char *const gone[] = { "vm-beta", "empty" };
	int alpha = retrieve_session(luo_fd, "vm-alpha");
	int gamma = retrieve_session(luo_fd, "vm-gamma");

	retrieve(alpha, "vm-alpha", 0x100, 8192, 1);	/* ENOENT: refused */
	retrieve(alpha, "vm-alpha", 0x102, 100, 3);	/* ENOENT: never retrieved */
	retrieve(alpha, "vm-alpha", 0x110, 2 * 4096, 19);
	retrieve(gamma, "vm-gamma", 0x300, 4096, 6);
	retrieve(gamma, "vm-gamma", 0x301, 2 * 4096, 7);
	retrieve(gamma, "vm-gamma", 0x302, 4096, 18);
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		retrieve_session(luo_fd, gone[i]);	/* ENOENT */
}

/* ---- kernel holders of a preserved file (scenario holders) ---- */

/*
 * Send @fd over a fresh socketpair with SCM_RIGHTS and never receive it:
 * the message queued on the peer holds a reference to the file.
 */
static void scm_send(int fd)
{
	int sv[2] = { -1, -1 };
	char byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	int err = 0;

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || sendmsg(sv[0], &msg, 0) != 1)
		err = errno;
	emit("{\"op\":\"scm_send\",\"pid\":%d,\"fd\":%d,\"socket_fd\":%d,\"peer_fd\":%d,\"result\":\"%s\"}",
	     getpid(), fd, sv[0], sv[1], errname(err));
}

/*
 * Register @fd as the io_uring fixed file 0 of a new ring; then register
 * the ring's own fd with IORING_REGISTER_RING_FDS and close it, so only
 * the task's registered rings (tctx->registered_rings) keep the ring.
 */
static void io_uring_register_file(int fd)
{
	struct io_uring_params params = { 0 };
	int ring = syscall(__NR_io_uring_setup, 4, &params);
	int err = ring < 0 ? errno : 0;
	struct io_uring_rsrc_update reg = { .offset = -1U };

	if (!err && syscall(__NR_io_uring_register, ring, IORING_REGISTER_FILES, &fd, 1) < 0)
		err = errno;
	emit("{\"op\":\"io_uring_register\",\"pid\":%d,\"fd\":%d,\"ring_fd\":%d,\"slot\":0,\"result\":\"%s\"}",
	     getpid(), fd, ring, errname(err));
	if (err)
		return;
	reg.data = ring;
	err = syscall(__NR_io_uring_register, ring, IORING_REGISTER_RING_FDS, &reg, 1) < 0 ? errno : 0;
	emit("{\"op\":\"io_uring_register_ring\",\"pid\":%d,\"ring_fd\":%d,\"offset\":%u,\"result\":\"%s\"}",
	     getpid(), ring, reg.offset, errname(err));
	if (!err)
		close_fd(ring);
}

/* Make @fd the backing file of /dev/loop@n; the loop device's fd is closed. */
static void loop_attach(int fd, int n)
{
	char path[32];
	int loop, err = 0;

	snprintf(path, sizeof(path), "/dev/loop%d", n);
	loop = open(path, O_RDWR);
	if (loop < 0 || ioctl(loop, LOOP_SET_FD, fd) < 0)
		err = errno;
	if (loop >= 0)
		close(loop);
	emit("{\"op\":\"loop_attach\",\"pid\":%d,\"fd\":%d,\"loop\":%d,\"result\":\"%s\"}",
	     getpid(), fd, n, errname(err));
}

/*
 * IOMMU_IOAS_COPY of the mapping at @iova of IOAS @src into a new IOAS of
 * the same iommufd: the copy shares the source's iopt_pages, whose one
 * reference holds the file.
 */
static void ioas_copy(int iommufd, __u32 src, __u64 iova, size_t size)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.src_ioas_id = src, .length = size, .src_iova = iova,
	};
	int err = 0;

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0)
		err = errno;
	copy.dst_ioas_id = alloc.out_ioas_id;
	if (!err && ioctl(iommufd, IOMMU_IOAS_COPY, &copy) < 0)
		err = errno;
	emit("{\"op\":\"ioas_copy\",\"pid\":%d,\"iommufd\":%d,\"src\":%u,\"dst\":%u,\"result\":\"%s\"}",
	     getpid(), iommufd, src, alloc.out_ioas_id, errname(err));
}

/* Map @size bytes of @fd into a new IOAS of /dev/iommu (IOMMU_IOAS_MAP_FILE). */
static void ioas_map_file(int fd, size_t size)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map_file map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.fd = fd, .start = 0, .length = size,
	};
	int iommufd = open("/dev/iommu", O_RDWR);
	int err = 0;

	if (iommufd < 0 || ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0)
		err = errno;
	map.ioas_id = alloc.out_ioas_id;
	if (!err && ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &map) < 0)
		err = errno;
	emit("{\"op\":\"ioas_map_file\",\"pid\":%d,\"fd\":%d,\"iommufd\":%d,\"ioas\":%u,\"iova\":%llu,\"result\":\"%s\"}",
	     getpid(), fd, iommufd, alloc.out_ioas_id, (unsigned long long)map.iova,
	     errname(err));
	if (!err)
		ioas_copy(iommufd, alloc.out_ioas_id, map.iova, size);
}

/*
 * holders: one session whose memfds are also held by the kernel: an
 * SCM_RIGHTS message in flight, an io_uring fixed file, a loop device's
 * backing file, an IOAS mapping (copied into a second IOAS, sharing its
 * iopt_pages); the fds are closed after, so those holders
 * and LUO are all that is left.  delta-plain keeps its fd.
 */
static void build_holders(int luo_fd)
{
	int s = create_session(luo_fd, "vm-delta");
	int scm = make_memfd("delta-scm", 4096, 11);
	int ring = make_memfd("delta-ring", 2 * 4096, 12);
	int loop = make_memfd("delta-loop", 4 * 4096, 13);
	int ioas = make_memfd("delta-ioas", 4096, 14);
	int plain = make_memfd("delta-plain", 4096, 15);

	preserve(s, "vm-delta", scm, 0x400);
	preserve(s, "vm-delta", ring, 0x401);
	preserve(s, "vm-delta", loop, 0x402);
	preserve(s, "vm-delta", ioas, 0x403);
	preserve(s, "vm-delta", plain, 0x404);
	scm_send(scm);
	io_uring_register_file(ring);
	loop_attach(loop, 0);
	ioas_map_file(ioas, 4096);
	close_fd(scm);
	close_fd(ring);
	close_fd(loop);
	close_fd(ioas);
}

/*
 * Load /kernel with /initrd.img as the crash kernel (kdump): a panic boots
 * it, and its PID 1 (this driver, luo_scenario=capture) saves /proc/vmcore.
 */
static void load_crash_kernel(void)
{
	static const char cmdline[] =
		"console=ttyS0 panic=-1 maxcpus=1 reset_devices kho=off "
		"luo_scenario=capture luo_phase=1";
	int kernel_fd = open("/kernel", O_RDONLY);
	int initrd_fd = open("/initrd.img", O_RDONLY);
	long ret = syscall(SYS_kexec_file_load, kernel_fd, initrd_fd,
			   sizeof(cmdline), cmdline, KEXEC_FILE_ON_CRASH);

	emit("{\"op\":\"kexec_load_crash\",\"result\":\"%s\"}", ret ? errname(errno) : "OK");
	close(kernel_fd);
	close(initrd_fd);
	drop_kexec_images();
}

static void crash_now(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);
	char comm[17] = "";

	prctl(PR_GET_NAME, comm);
	/* This task panics the kernel: the dump's crashed thread. */
	emit("{\"op\":\"sysrq_crash\",\"pid\":%d,\"comm\":\"%s\"}", getpid(), comm);
	if (fd < 0 || write(fd, "c", 1) != 1)
		emit("{\"op\":\"sysrq_crash\",\"result\":\"%s\"}", errname(errno));
}

/*
 * The capture disk: for each saved file a 512-byte header ("LUOCAP1", the
 * name, the size in bytes), then the data padded to 512 bytes; a header
 * with an empty name ends it.
 */
static int save_file(int disk, const char *name, const char *path)
{
	static char buf[1 << 20];
	char header[512] = "LUOCAP1";
	struct stat st;
	int fd = open(path, O_RDONLY);
	unsigned long long size = 0;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st))
		return -errno;
	/* /proc/vmcore's size is its st_size; read until EOF anyway. */
	off_t start = lseek(disk, 0, SEEK_CUR);

	if (write(disk, header, sizeof(header)) != sizeof(header))
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (write(disk, buf, n) != n)
			return -errno;
		size += n;
	}
	close(fd);
	if (size % 512) {
		memset(buf, 0, 512);
		if (write(disk, buf, 512 - size % 512) < 0)
			return -errno;
	}
	snprintf(header + 8, 64, "%s", name);
	memcpy(header + 72, &size, sizeof(size));
	if (pwrite(disk, header, sizeof(header), start) != sizeof(header))
		return -errno;
	emit("{\"op\":\"capture_save\",\"name\":\"%s\",\"size\":%llu}", name, size);
	return 0;
}

/*
 * PID 1 of the capture kernel: save /proc/vmcore as it is (ELF), then
 * filtered and compressed by makedumpfile -c -d 31 where the initramfs has
 * it, onto /dev/vda; exiting ends the run.
 */
static void capture(void)
{
	int disk = open("/dev/vda", O_WRONLY);
	char end[512] = "LUOCAP1";
	pid_t pid;
	int status = -1;

	if (disk < 0) {
		emit("{\"op\":\"capture\",\"result\":\"%s\"}", errname(errno));
		return;
	}
	mkdir("/tmp", 01777);	/* makedumpfile writes the vmcoreinfo there */
	save_file(disk, "vmcore.elf", "/proc/vmcore");
	if (access("/sbin/makedumpfile", X_OK) == 0) {
		pid = fork();
		if (pid == 0) {
			execl("/sbin/makedumpfile", "makedumpfile", "-c", "-d", "31",
			      "/proc/vmcore", "/vmcore.kdump", (char *)NULL);
			_exit(127);
		}
		waitpid(pid, &status, 0);
		emit("{\"op\":\"makedumpfile\",\"status\":%d}", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		save_file(disk, "vmcore.kdump", "/vmcore.kdump");
	}
	if (write(disk, end, sizeof(end)) != sizeof(end) || fsync(disk))
		emit("{\"op\":\"capture\",\"result\":\"%s\"}", errname(errno));
	close(disk);
	emit("{\"op\":\"capture\",\"result\":\"OK\"}");
}

/*
 * flb-finished: after the live update, every session retrieved with all its
 * files and finished, so each FLB's last file is finished and its .finish()
 * runs (luo_flb_file_finish()).
 */
static void finish_everything(int luo_fd)
{
	static const struct {
		const char *session;
		uint64_t token;
		size_t size;
		unsigned int seed;
	} files[] = {
		{ "vm-alpha", 0x100, 8192, 1 }, { "vm-alpha", 0x101, 3 * 4096, 2 },
		{ "vm-alpha", 0x102, 100, 3 }, { "vm-beta", 0x100, 4096, 4 },
		{ "vm-beta", 0x200, 5 * 4096, 5 }, { "vm-gamma", 0x300, 4096, 6 },
		{ "vm-gamma", 0x301, 2 * 4096, 7 },
	};
	static const char *const sessions[] = { "vm-alpha", "vm-beta", "vm-gamma", "empty" };

	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		int fd = retrieve_session(luo_fd, sessions[i]);

		for (size_t j = 0; j < sizeof(files) / sizeof(files[0]); j++)
			if (!strcmp(files[j].session, sessions[i]))
				retrieve(fd, sessions[i], files[j].token, files[j].size, files[j].seed);
		finish(fd, sessions[i]);
	}
}

static volatile sig_atomic_t go_on;

static void on_usr1(int sig)
{
	(void)sig;
	go_on = 1;
}

/*
 * scale: the shape of a hypervisor host (tests/bench_scale.py): SESSIONS
 * sessions of FILES one-page memfds each, every fd kept open, and the agent
 * forked into PROCS processes in all, each with its own copy of the fd
 * table (PROCS x (SESSIONS x (FILES + 1)) open fds).  Logged as one summary
 * line, not a line per file: 100,000 lines would take minutes on the
 * emulated serial port.
 */
static void build_scale(int luo_fd, const char *spec)
{
	struct rlimit nofile = { 1 << 20, 1 << 20 };
	int sessions = 400, per_session = 25, procs = 9;
	long preserved = 0, failed = 0;
	char name[64];

	if (spec)
		sscanf(spec, "%d,%d,%d", &sessions, &per_session, &procs);
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		perror("setrlimit");
	for (int s = 0; s < sessions; s++) {
		int session = -1;

		snprintf(name, sizeof(name), "vm-%05d", s);
		if (luo_create_session(luo_fd, name, &session)) {
			failed++;
			continue;
		}
		for (int f = 0; f < per_session; f++) {
			int fd;

			snprintf(name, sizeof(name), "vm-%05d-mem%02d", s, f);
			fd = memfd_create(name, 0);
			if (fd < 0 || ftruncate(fd, 4096) ||
			    luo_preserve_fd(session, fd, 0x1000 + f))
				failed++;
			else
				preserved++;
		}
	}
	emit("{\"op\":\"scale\",\"pid\":%d,\"sessions\":%d,\"per_session\":%d,"
	     "\"preserved\":%ld,\"failed\":%ld,\"procs\":%d}",
	     getpid(), sessions, per_session, preserved, failed, procs);
	for (int p = 1; p < procs; p++)
		fork_holder();
}

/* Wait until the inspector ran (the init script sends SIGUSR1). */
static void wait_for_go(void)
{
	signal(SIGUSR1, on_usr1);
	while (!go_on)
		pause();
}

/*
 * churn: keep creating sessions, preserving memfds and closing them, so an
 * inspector walking the lists meets them changing under it.  Runs until
 * killed; logs only a count now and then (the state never settles).
 */
static void churn(int luo_fd)
{
	char name[64];

	for (unsigned long round = 0;; round++) {
		int fds[4], session;

		snprintf(name, sizeof(name), "churn-%lu", round % 4);
		session = -1;
		if (luo_create_session(luo_fd, name, &session))
			continue;
		for (int i = 0; i < 4; i++) {
			fds[i] = memfd_create("churn", 0);
			if (ftruncate(fds[i], 4096 * (i + 1)) == 0)
				luo_preserve_fd(session, fds[i], 0x1000 + i);
		}
		for (int i = 0; i < 4; i++)
			close(fds[i]);
		close(session);	/* unpreserves every file */
		usleep(100);	/* leave the inspector some CPU */
		if (round % 1000 == 0)
			emit("{\"op\":\"churn\",\"pid\":%d,\"rounds\":%lu}", getpid(), round);
	}
}

int main(void)
{
	const char *scenario = getenv("luo_scenario");
	const char *phase = getenv("luo_phase");
	int luo_fd, alpha0;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!scenario)
		scenario = "outgoing";
	if (!phase)
		phase = "1";
	if (!strcmp(scenario, "capture")) {
		emit("{\"op\":\"start\",\"pid\":%d,\"scenario\":\"capture\",\"phase\":1}", getpid());
		capture();
		return 0;	/* PID 1 exits: the capture kernel panics, QEMU ends */
	}
	emit("{\"op\":\"start\",\"pid\":%d,\"scenario\":\"%s\",\"phase\":%s}",
	     getpid(), scenario, phase);

	/*
	 * Only phase 1 of the live-update scenarios kexecs, and phase 2 of
	 * second (a host's second live update).
	 */
	if (!strcmp(scenario, "outgoing") || !strcmp(scenario, "disabled") ||
	    !strcmp(scenario, "no-luo") || !strcmp(phase, "3") ||
	    (!strcmp(phase, "2") && strncmp(scenario, "second", 6)))
		drop_kexec_images();
	if (!strcmp(scenario, "disabled") || !strcmp(scenario, "no-luo")) {
		open_luo();
		ready(scenario);
		hang();
	}
	if (!strcmp(scenario, "second-pending") && !strcmp(phase, "2")) {
		/*
		 * second-pending, boot 2: a middle kernel that never opens
		 * /dev/liveupdate, so never deserializes what it received,
		 * before its own kexec; boot 3 is second's.
		 */
		ready(scenario);
		sleep(3);	/* the host dumps this state meanwhile */
		kexec_next("3");
		hang();
	}
	if (!strncmp(scenario, "second", 6) && strcmp(phase, "1")) {
		luo_fd = open_luo();
		if (!strcmp(phase, "2")) {
			build_second_update(luo_fd);
			ready(scenario);
			sleep(3);	/* the host dumps this state meanwhile */
			kexec_next("3");
		} else {
			retrieve_second_update(luo_fd);
			ready(scenario);
		}
		hang();
	}
	if (!strcmp(phase, "2")) {
		if (strcmp(scenario, "incoming-pending")) {
			luo_fd = open_luo();
			if (luo_fd < 0) {
				/* A failed deserialization is kept: EIO again. */
				open_luo();
			} else if (strstr(scenario, "crowded") || strstr(scenario, "doomed")) {
				retrieve_crowd(luo_fd);
			} else if (!strcmp(scenario, "flb-finished")) {
				finish_everything(luo_fd);
			} else if (!strcmp(scenario, "finish-early")) {
				finish_early(luo_fd, scenario);
			} else if (!strcmp(scenario, "byte-names")) {
				retrieve(retrieve_session(luo_fd, "vm-\xff"), "vm-\xff", 0x800, 4096, 20);
				retrieve(retrieve_session(luo_fd, "vm-\xfe"), "vm-\xfe", 0x800, 4096, 21);
			} else if (!strcmp(scenario, "journey-drop")) {
				/* Which sessions arrived: a silent drop logs nothing. */
				retrieve_session(luo_fd, "vm-alpha");
				retrieve_session(luo_fd, "vm-beta");
				retrieve_session(luo_fd, "vm-gamma");
				retrieve_session(luo_fd, "empty");
			} else {
				build_incoming(luo_fd);
			}
		}
		ready(scenario);
		hang();
	}

	luo_fd = open_luo();
	if (luo_fd < 0)
		hang();
	if (!strcmp(scenario, "churn")) {
		ready(scenario);
		churn(luo_fd);
	}
	if (!strcmp(scenario, "warn")) {
		/*
		 * warn: closing vm-epsilon's fd frees the session; the runner
		 * makes luo_file_set_destroy() find a count left, and its
		 * WARN_ON() panics (panic_on_warn) into the crash kernel.
		 */
		int epsilon = create_session(luo_fd, "vm-epsilon");
		int zeta = create_session(luo_fd, "vm-zeta");
		char comm[17] = "";

		preserve(epsilon, "vm-epsilon", make_memfd("epsilon-0", 4096, 16), 0x500);
		preserve(zeta, "vm-zeta", make_memfd("zeta-0", 2 * 4096, 17), 0x600);
		load_crash_kernel();
		ready(scenario);
		sleep(3);
		prctl(PR_GET_NAME, comm);
		/* Logged first: the kernel panics inside this close. */
		emit("{\"op\":\"close_session\",\"pid\":%d,\"comm\":\"%s\",\"fd\":%d,\"session\":\"vm-epsilon\"}",
		     getpid(), comm, epsilon);
		close(epsilon);
		hang();
	}
	if (!strcmp(scenario, "scale")) {
		build_scale(luo_fd, getenv("luo_scale"));
		ready(scenario);
		hang();
	}
	if (!strcmp(scenario, "holders")) {
		build_holders(luo_fd);
		load_crash_kernel();
		ready(scenario);
		sleep(3);	/* the host dumps this state meanwhile */
		crash_now();
		hang();
	}
	if (strstr(scenario, "crowded") || strstr(scenario, "doomed")) {
		build_crowd(luo_fd, strstr(scenario, "doomed") ? 51 : 50);
		ready(scenario);
		if (!strncmp(scenario, "live-", 5))
			wait_for_go();	/* the inspector runs in the guest first */
		else
			sleep(3);	/* the host dumps this state meanwhile */
		kexec_next("2");
		hang();
	}
	if (!strcmp(scenario, "no-session")) {
		/*
		 * no-session: /dev/liveupdate held, no session created, the
		 * next kernel loaded (with LUO off on its command line).
		 */
		kexec_load_next("2");
		ready(scenario);
		sleep(3);
		kexec_reboot();
		hang();
	}
	alpha0 = build_outgoing(luo_fd);
	if (!strncmp(scenario, "loaded", 6)) {
		/*
		 * loaded: the next kernel is loaded (kexec_file_load) when the
		 * state is dumped, as when an operator runs preflight between
		 * kexec -s -l and kexec -e; loaded-legacy: by kexec -l -c.
		 */
		if (!strcmp(scenario, "loaded-legacy"))
			kexec_load_legacy("2");
		else
			kexec_load_next("2");
		ready(scenario);
		sleep(3);
		kexec_reboot();
		hang();
	}
	if (!strcmp(scenario, "byte-names")) {
		/*
		 * byte-names: two sessions whose names differ only in a byte
		 * that is not UTF-8; luo_session_insert() compares names with
		 * strncmp(), so both are created, and both arrive.
		 */
		static const char *const names[] = { "vm-\xff", "vm-\xfe" };

		for (int i = 0; i < 2; i++) {
			int session = create_session(luo_fd, names[i]);

			preserve(session, names[i], make_memfd(i ? "bytes-1" : "bytes-0", 4096, 20 + i), 0x800);
		}
	}
	if (!strcmp(scenario, "sealed")) {
		/*
		 * sealed: vm-alpha 0x100's memfd sealed against shrinking and
		 * growing after it was preserved; the next kernel logs the
		 * seals its retrieve gives.
		 */
		add_seals(alpha0, F_SEAL_SHRINK | F_SEAL_GROW);
	}
	if (!strncmp(scenario, "journey", 7) || !strncmp(scenario, "flb", 3) ||
	    !strncmp(scenario, "second", 6) || !strcmp(scenario, "sealed") ||
	    !strcmp(scenario, "byte-names") || !strcmp(scenario, "finish-early")) {
		/* The state an operator saves before kexec -e, then the update. */
		ready(scenario);
		sleep(3);
		kexec_next("2");
		hang();
	}
	if (!strcmp(scenario, "live")) {
		/* The inspector runs in the guest; then the live update. */
		ready(scenario);
		wait_for_go();
	}
	if (!strcmp(scenario, "outgoing")) {
		ready(scenario);
		hang();
	}
	/* frozen, incoming, incoming-pending: live update into phase 2. */
	kexec_next("2");
	hang();
	return 0;
}
