/* bench/malloc_counter.c: an LD_PRELOAD shim that counts the heap a process
 * holds, for bench/idle_memory.py. It forwards every allocation call to
 * libc and keeps two counters, live bytes (malloc_usable_size) and live
 * blocks; SIGUSR1 makes it write `live_bytes=N live_blocks=M` to stderr.
 *
 *   LD_PRELOAD=bazel-bin/bench/libmalloc_counter.so server ... & kill -USR1 $!
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static atomic_long live_bytes;
static atomic_long live_blocks;

static void* (*real_malloc)(size_t);
static void (*real_free)(void*);
static void* (*real_calloc)(size_t, size_t);
static void* (*real_realloc)(void*, size_t);
static int (*real_posix_memalign)(void**, size_t, size_t);
static void* (*real_aligned_alloc)(size_t, size_t);

/* dlsym may call calloc before real_calloc is known: serve it from here. */
static char bootstrap[4096];
static size_t bootstrap_used;

static int from_bootstrap(void* p) {
  return (char*)p >= bootstrap && (char*)p < bootstrap + sizeof(bootstrap);
}

static void count(void* p, long sign) {
  if (p == NULL || from_bootstrap(p)) return;
  atomic_fetch_add(&live_bytes, sign * (long)malloc_usable_size(p));
  atomic_fetch_add(&live_blocks, sign);
}

static char* append_number(char* out, long value) {
  char digits[24];
  int n = 0;
  if (value < 0) {
    *out++ = '-';
    value = -value;
  }
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

static void report(int signal_number) {
  (void)signal_number;
  char line[96];
  char* out = line;
  memcpy(out, "live_bytes=", 11);
  out = append_number(out + 11, atomic_load(&live_bytes));
  memcpy(out, " live_blocks=", 13);
  out = append_number(out + 13, atomic_load(&live_blocks));
  *out++ = '\n';
  (void)!write(2, line, (size_t)(out - line));
}

__attribute__((constructor)) static void init(void) {
  real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_malloc = dlsym(RTLD_NEXT, "malloc");
  real_free = dlsym(RTLD_NEXT, "free");
  real_realloc = dlsym(RTLD_NEXT, "realloc");
  real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = report;
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, NULL);
}

void* malloc(size_t size) {
  if (real_malloc == NULL) init();
  void* p = real_malloc(size);
  count(p, 1);
  return p;
}

void free(void* p) {
  if (p == NULL || from_bootstrap(p)) return;
  count(p, -1);
  real_free(p);
}

void* calloc(size_t n, size_t size) {
  if (real_calloc == NULL) {
    /* dlsym's own allocation, before we know libc's calloc */
    void* p = bootstrap + bootstrap_used;
    bootstrap_used += (n * size + 15) & ~(size_t)15;
    return p;
  }
  void* p = real_calloc(n, size);
  count(p, 1);
  return p;
}

void* realloc(void* old, size_t size) {
  if (from_bootstrap(old)) {
    void* p = malloc(size);
    if (p != NULL) memcpy(p, old, size);
    return p;
  }
  count(old, -1);
  void* p = real_realloc(old, size);
  count(p != NULL ? p : old, 1);
  return p;
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  int error = real_posix_memalign(out, alignment, size);
  if (error == 0) count(*out, 1);
  return error;
}

void* aligned_alloc(size_t alignment, size_t size) {
  void* p = real_aligned_alloc(alignment, size);
  count(p, 1);
  return p;
}
