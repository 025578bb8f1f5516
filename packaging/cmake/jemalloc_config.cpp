// Linked into every Easel executable together with jemalloc. First-touch page faults are very slow
// on the machines we run on (~0.3 GB/s), so freed memory is kept for reuse instead of being returned
// to the kernel: with decay on, a libtorch UNet step spent most of its time faulting pages back in.
// MALLOC_CONF in the environment still overrides this.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's documented configuration hook.
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
