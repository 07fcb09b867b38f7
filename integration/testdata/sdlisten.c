/* sdlisten prints what libsystemd's sd_listen_fds_with_names sees, then waits for a signal.
 * watchgod's integration tests compile it with `gcc sdlisten.c -lsystemd` and run it as a job, to
 * prove that god's sockets reach a C program through the systemd protocol unchanged.
 *
 * Output, one line each, flushed at once:
 *   sd_listen_fds n=N pid=PID listen_pid=LISTEN_PID
 *   fd=FD name=NAME socket=0|1 listening=0|1 family=inet|unix|other
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

static const char *family(int fd) {
	if (sd_is_socket(fd, AF_INET, 0, -1) > 0 || sd_is_socket(fd, AF_INET6, 0, -1) > 0)
		return "inet";
	if (sd_is_socket(fd, AF_UNIX, 0, -1) > 0)
		return "unix";
	return "other";
}

int main(void) {
	const char *lp = getenv("LISTEN_PID"); /* read first: unset_environment=0 keeps it anyway */
	char **names = NULL;
	int n = sd_listen_fds_with_names(0, &names);
	printf("sd_listen_fds n=%d pid=%d listen_pid=%s\n", n, (int)getpid(), lp ? lp : "");
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		printf("fd=%d name=%s socket=%d listening=%d family=%s\n", fd, names ? names[i] : "?",
		       sd_is_socket(fd, AF_UNSPEC, 0, -1) > 0, sd_is_socket(fd, AF_UNSPEC, 0, 1) > 0, family(fd));
	}
	fflush(stdout);
	pause(); /* until god stops it */
	return 0;
}
