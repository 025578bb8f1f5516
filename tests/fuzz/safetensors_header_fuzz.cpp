// libFuzzer: a .safetensors file as a user might bring it, opened through the real path (a memfd,
// so open() maps it exactly as it maps a checkpoint): header length, UTF-8 check, JSON, dtypes,
// shapes and offsets. Every tensor it accepts must lie inside the file with a byte count that
// matches its dtype and shape.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "inference/loading/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int fd = ::memfd_create("safetensors-fuzz", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (::write(fd, data, size) != static_cast<ssize_t>(size)) {
        ::close(fd);
        return 0;
    }
    try {
        const auto file = easel::inference::SafetensorsFile::open("/proc/self/fd/" + std::to_string(fd));
        for (const auto& t : file.tensors()) {
            const auto* begin = reinterpret_cast<const std::uint8_t*>(t.data.data());
            (void)begin;
            if (static_cast<std::size_t>(t.numel()) * easel::inference::dtypeSize(t.dtype) != t.data.size()) {
                __builtin_trap();
            }
            (void)file.find(t.name);
        }
        for (const auto& [k, v] : file.metadata()) (void)k, (void)v;
    } catch (const std::exception&) {
    }
    ::close(fd);
    return 0;
}
