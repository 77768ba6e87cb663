// execve's limits on argument strings, as Linux sets them: one string of
// up to MAX_ARG_STRLEN (128 KiB with its NUL) passes, one byte more is
// E2BIG; the same for an environment variable.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void try(const char *what, size_t len, int in_env) {
  char *s = malloc(len + 1);
  memset(s, 'a', len);
  s[len] = 0;
  if (in_env) memcpy(s, "X=", 2);
  pid_t pid = fork();
  if (pid == 0) {
    char *argv[] = {"/bin/true", in_env ? NULL : s, NULL};
    char *envp[] = {in_env ? s : NULL, NULL};
    execve("/bin/true", argv, envp);
    _exit(errno == E2BIG ? 7 : errno == ENAMETOOLONG ? 8 : 9);
  }
  int status;
  waitpid(pid, &status, 0);
  int code = WEXITSTATUS(status);
  printf("%s %zu: %s\n", what, len, code == 0 ? "ran" : code == 7 ? "E2BIG" : code == 8 ? "ENAMETOOLONG" : "other");
  free(s);
}

int main(void) {
  try("arg", 50000, 0);
  try("arg", 131071, 0);
  try("arg", 131072, 0);
  try("env", 131071, 1);
  try("env", 131072, 1);
  return 0;
}
