#pragma once
// Minimal command-line parsing shared by the two composition roots: "--name value" and
// "--name=value" options, bare flags, and clear errors for anything unknown.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace easel::app {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ArgList {
public:
    ArgList(int argc, char** argv);
    bool has(const std::string& flag) const;
    std::optional<std::string> value(const std::string& option) const;
    // The option as a whole number / number, or `fallback` when absent; UsageError for text that is
    // not entirely a number ("12abc").
    int intValue(const std::string& option, int fallback) const;
    float floatValue(const std::string& option, float fallback) const;
    // A 64-bit whole number (seeds), or nullopt when absent; UsageError for anything else.
    std::optional<std::int64_t> int64Value(const std::string& option) const;
    // Throws UsageError for any argument that is neither a known option (takes a value) nor a flag.
    void rejectUnknown(std::initializer_list<std::string> options, std::initializer_list<std::string> flags) const;
    const std::vector<std::string>& raw() const { return m_args; }

private:
    std::vector<std::string> m_args;
};

// "127.0.0.1:7860" -> {"127.0.0.1", 7860}; throws UsageError on a bad port.
std::pair<std::string, std::uint16_t> parseListen(const std::string& text);

}  // namespace easel::app
