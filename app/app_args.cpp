#include "app/app_args.h"

#include <algorithm>
#include <charconv>

namespace easel::app {

ArgList::ArgList(int argc, char** argv) : m_args(argv + std::min(argc, 1), argv + argc) {}

bool ArgList::has(const std::string& flag) const {
    return std::find(m_args.begin(), m_args.end(), flag) != m_args.end();
}

std::optional<std::string> ArgList::value(const std::string& option) const {
    for (std::size_t i = 0; i < m_args.size(); ++i) {
        if (m_args[i] == option) {
            if (i + 1 >= m_args.size()) throw UsageError("option " + option + " needs a value");
            return m_args[i + 1];
        }
        if (m_args[i].rfind(option + "=", 0) == 0) return m_args[i].substr(option.size() + 1);
    }
    return std::nullopt;
}

namespace {

template <typename T, typename Parse>
T parseNumber(const std::optional<std::string>& v, const std::string& option, T fallback, Parse parse,
              const char* what) {
    if (!v) return fallback;
    try {
        std::size_t used = 0;
        const T n = parse(*v, &used);
        if (used == v->size()) return n;
    } catch (const std::exception&) {
    }
    throw UsageError(option + " expects " + what + ", got '" + *v + "'");
}

}  // namespace

int ArgList::intValue(const std::string& option, int fallback) const {
    return parseNumber<int>(
        value(option), option, fallback, [](const std::string& s, std::size_t* used) { return std::stoi(s, used); },
        "a whole number");
}

float ArgList::floatValue(const std::string& option, float fallback) const {
    return parseNumber<float>(
        value(option), option, fallback, [](const std::string& s, std::size_t* used) { return std::stof(s, used); },
        "a number");
}

std::optional<std::int64_t> ArgList::int64Value(const std::string& option) const {
    const auto v = value(option);
    if (!v) return std::nullopt;
    return parseNumber<std::int64_t>(
        v, option, 0, [](const std::string& s, std::size_t* used) { return std::stoll(s, used); }, "a whole number");
}

void ArgList::rejectUnknown(std::initializer_list<std::string> options,
                            std::initializer_list<std::string> flags) const {
    for (std::size_t i = 0; i < m_args.size(); ++i) {
        const auto& a = m_args[i];
        const auto eq = a.find('=');
        const auto name = a.substr(0, eq);
        if (std::find(options.begin(), options.end(), name) != options.end()) {
            if (eq == std::string::npos) ++i;  // skip its value
            continue;
        }
        if (std::find(flags.begin(), flags.end(), a) != flags.end()) continue;
        throw UsageError("unknown argument '" + a + "'");
    }
}

std::pair<std::string, std::uint16_t> parseListen(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) throw UsageError("--listen expects HOST:PORT, got '" + text + "'");
    std::string host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    const auto portText = text.substr(colon + 1);
    const auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc() || ptr != portText.data() + portText.size() || port > 65535) {
        throw UsageError("--listen: bad port '" + portText + "'");
    }
    return {host, static_cast<std::uint16_t>(port)};
}

}  // namespace easel::app
