#include "accounts/crypto.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace easel::accounts {
namespace {

void ensureSodium() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

Bytes deriveKey(const Bytes& master, std::uint64_t id, const char context[8], std::size_t size) {
    Bytes out(size);
    crypto_kdf_derive_from_key(out.data(), out.size(), id, context, master.data());
    return out;
}

class SlotGuard {
public:
    explicit SlotGuard(std::counting_semaphore<64>& s) : m_s(s) { m_s.acquire(); }
    ~SlotGuard() { m_s.release(); }
    SlotGuard(const SlotGuard&) = delete;
    SlotGuard& operator=(const SlotGuard&) = delete;

private:
    std::counting_semaphore<64>& m_s;
};

}  // namespace

PasswordHasher::PasswordHasher(PasswordCost cost, int maxConcurrent) : m_cost(cost), m_slots(maxConcurrent) {
    ensureSodium();
}

std::string PasswordHasher::hash(const std::string& password) {
    SlotGuard slot(m_slots);
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), m_cost.opsLimit, m_cost.memLimit,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        throw std::runtime_error("out of memory while hashing a password");
    }
    return out;
}

bool PasswordHasher::verify(const std::string& hash, const std::string& password) {
    SlotGuard slot(m_slots);
    return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

KeyVault KeyVault::openOrCreate(const std::filesystem::path& keyFile) {
    ensureSodium();
    Bytes key(crypto_kdf_KEYBYTES);
    if (std::filesystem::exists(keyFile)) {
        std::ifstream in(keyFile, std::ios::binary);
        in.read(reinterpret_cast<char*>(key.data()), static_cast<std::streamsize>(key.size()));
        if (in.gcount() != static_cast<std::streamsize>(key.size()) || in.peek() != EOF) {
            throw std::runtime_error("the server key file " + keyFile.string() + " is damaged (expected " +
                                     std::to_string(key.size()) + " bytes)");
        }
        return KeyVault(std::move(key));
    }
    crypto_kdf_keygen(key.data());
    std::filesystem::create_directories(keyFile.parent_path());
    const auto tmp = keyFile.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create the server key file " + keyFile.string());
    const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write the server key file " + keyFile.string());
    // link() fails if another process created the file first; then use theirs.
    if (::link(tmp.c_str(), keyFile.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return openOrCreate(keyFile);
    }
    ::unlink(tmp.c_str());
    return KeyVault(std::move(key));
}

KeyVault::KeyVault(Bytes masterKey) {
    ensureSodium();
    if (masterKey.size() != crypto_kdf_KEYBYTES) throw std::invalid_argument("server key must be 32 bytes");
    m_hashKey = deriveKey(masterKey, 1, "easelkey", crypto_generichash_KEYBYTES);
    m_boxKey = deriveKey(masterKey, 2, "easelbox", crypto_secretbox_KEYBYTES);
    sodium_memzero(masterKey.data(), masterKey.size());
}

Bytes KeyVault::lookupHash(const std::string& secret) const {
    Bytes out(32);
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                       m_hashKey.data(), m_hashKey.size());
    return out;
}

std::string KeyVault::webhookSecret(std::int64_t userId) const {
    const auto raw = lookupHash("webhook-secret:" + std::to_string(userId));
    std::string hex(raw.size() * 2 + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), raw.data(), raw.size());
    hex.pop_back();
    return hex;
}

Bytes KeyVault::seal(const std::string& plaintext) const {
    Bytes out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size());
    randombytes_buf(out.data(), crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out.data() + crypto_secretbox_NONCEBYTES,
                          reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(), out.data(),
                          m_boxKey.data());
    return out;
}

std::string KeyVault::open(const Bytes& sealed) const {
    if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        throw std::runtime_error("sealed secret is truncated");
    }
    std::string out(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
    if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(out.data()),
                                   sealed.data() + crypto_secretbox_NONCEBYTES,
                                   sealed.size() - crypto_secretbox_NONCEBYTES, sealed.data(), m_boxKey.data()) != 0) {
        throw std::runtime_error("the sealed secret does not open with this server key");
    }
    return out;
}

bool equalSecrets(const Bytes& a, const Bytes& b) {
    return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace easel::accounts
