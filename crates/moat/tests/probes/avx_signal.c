/* An AVX (ymm) register holding a value across a signal whose handler clobbers it
   keeps its upper half: signal frames save and restore the full XSAVE state. */
#include <immintrin.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static void h(int s) { (void)s; volatile __m256 z = _mm256_set1_ps(9.0f); (void)z; __asm__ volatile("vxorps %%ymm0, %%ymm0, %%ymm0\n vxorps %%ymm1,%%ymm1,%%ymm1" ::: "xmm0", "xmm1"); }
int main(void) {
    signal(SIGUSR1, h);
    float out[8];
    __asm__ volatile(
        "vbroadcastss %1, %%ymm1\n"
        "mov $62, %%eax\n mov %2, %%edi\n mov $10, %%esi\n syscall\n"
        "vmovups %%ymm1, %0\n"
        : "=m"(out) : "m"((float){3.5f}), "r"(getpid()) : "rax", "rdi", "rsi", "rcx", "r11", "xmm1", "memory");
    printf("%g %g\n", out[0], out[7]);
    return 0;
}
