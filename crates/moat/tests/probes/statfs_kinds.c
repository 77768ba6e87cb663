// fstatfs of files with no name: pipes, sockets and eventfds live on
// Linux's pseudo-filesystems (pipefs, sockfs, anon_inodefs).
#include <stdio.h>
#include <sys/vfs.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>
int main(void) {
  int p[2]; pipe(p);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  int e = eventfd(0, 0);
  struct statfs st;
  fstatfs(p[0], &st); printf("pipe %lx\n", (long)st.f_type);
  fstatfs(s, &st); printf("socket %lx\n", (long)st.f_type);
  fstatfs(e, &st); printf("eventfd %lx\n", (long)st.f_type);
  return 0;
}
