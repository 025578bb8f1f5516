#include "storage/s3_blob_store.h"

#include <atomic>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string_view>

#include "net/aws_sigv4.h"
#include "net/http_client.h"

namespace easel::storage {
namespace {

// --- The few XML fields S3 answers with -------------------------------------------------------------

std::string xmlUnescape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '&') {
            out += text[i];
            continue;
        }
        const auto end = text.find(';', i);
        if (end == std::string_view::npos) {
            out += text[i];
            continue;
        }
        const auto entity = text.substr(i + 1, end - i - 1);
        if (entity == "amp")
            out += '&';
        else if (entity == "lt")
            out += '<';
        else if (entity == "gt")
            out += '>';
        else if (entity == "quot")
            out += '"';
        else if (entity == "apos")
            out += '\'';
        else if (entity.size() > 1 && entity[0] == '#') {
            unsigned code = 0;
            const bool hexForm = entity[1] == 'x' || entity[1] == 'X';
            const auto digits = entity.substr(hexForm ? 2 : 1);
            const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), code, hexForm ? 16 : 10);
            if (ec != std::errc() || p != digits.data() + digits.size()) {
                out.append(text.substr(i, end - i + 1));
            } else if (code < 0x80) {
                out += static_cast<char>(code);
            } else if (code < 0x800) {
                out += static_cast<char>(0xC0 | (code >> 6));
                out += static_cast<char>(0x80 | (code & 0x3F));
            } else if (code < 0x10000) {
                out += static_cast<char>(0xE0 | (code >> 12));
                out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (code & 0x3F));
            } else {
                out += static_cast<char>(0xF0 | (code >> 18));
                out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
                out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (code & 0x3F));
            }
        } else {
            out.append(text.substr(i, end - i + 1));
        }
        i = end;
    }
    return out;
}

// The raw inner text of every <tag>...</tag> (attributes allowed on the opening tag), in order.
std::vector<std::string_view> xmlBlocks(std::string_view xml, std::string_view tag) {
    std::vector<std::string_view> out;
    const std::string open = "<" + std::string(tag);
    const std::string close = "</" + std::string(tag) + ">";
    std::size_t at = 0;
    while ((at = xml.find(open, at)) != std::string_view::npos) {
        const auto after = at + open.size();
        if (after >= xml.size() || (xml[after] != '>' && xml[after] != ' ')) {
            at = after;
            continue;
        }
        const auto start = xml.find('>', after);
        if (start == std::string_view::npos) break;
        if (xml[start - 1] == '/') {  // <Tag/>
            out.emplace_back();
            at = start + 1;
            continue;
        }
        const auto end = xml.find(close, start + 1);
        if (end == std::string_view::npos) break;
        out.push_back(xml.substr(start + 1, end - start - 1));
        at = end + close.size();
    }
    return out;
}

std::string xmlFirst(std::string_view xml, std::string_view tag) {
    const auto blocks = xmlBlocks(xml, tag);
    return blocks.empty() ? std::string() : xmlUnescape(blocks.front());
}

// "2026-12-05T16:20:01.000Z" -> Unix seconds; nullopt when it is not that shape.
std::optional<std::int64_t> parseIsoTime(const std::string& text) {
    std::tm tm{};
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &year, &month, &day, &hour, &minute, &second) != 6) {
        return std::nullopt;
    }
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    return static_cast<std::int64_t>(::timegm(&tm));
}

std::string percentDecode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            unsigned value = 0;
            const auto [p, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
            if (ec == std::errc() && p == text.data() + i + 3) {
                out += static_cast<char>(value);
                i += 2;
                continue;
            }
        }
        out += text[i] == '+' ? ' ' : text[i];
    }
    return out;
}

}  // namespace

bool isS3Url(const std::string& url) { return url.starts_with("s3://"); }

S3Settings parseS3Url(const std::string& url, const std::function<const char*(const char*)>& env) {
    if (!isS3Url(url)) throw std::invalid_argument("a blob store URL starts with s3://");
    S3Settings s;
    std::string rest = url.substr(5);
    std::string query;
    if (const auto q = rest.find('?'); q != std::string::npos) {
        query = rest.substr(q + 1);
        rest.resize(q);
    }
    const auto slash = rest.find('/');
    s.bucket = rest.substr(0, slash);
    if (slash != std::string::npos) {
        s.prefix = percentDecode(rest.substr(slash + 1));
        if (!s.prefix.empty() && !s.prefix.ends_with('/')) s.prefix += '/';
    }
    if (s.bucket.find('@') != std::string::npos || url.find('@') < url.find('?')) {
        throw std::invalid_argument("put S3 credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not in the URL");
    }
    if (s.bucket.size() < 3 || s.bucket.size() > 63 ||
        s.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos) {
        throw std::invalid_argument("the bucket name '" + s.bucket +
                                    "' is not valid (3-63 characters: lower-case letters, digits, '.', '-')");
    }
    bool styleGiven = false;
    std::size_t at = 0;
    while (at < query.size()) {
        auto end = query.find('&', at);
        if (end == std::string::npos) end = query.size();
        const auto pair = query.substr(at, end - at);
        at = end + 1;
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        const auto name = pair.substr(0, eq);
        const auto value = eq == std::string::npos ? std::string() : percentDecode(pair.substr(eq + 1));
        auto number = [&](std::int64_t lo, std::int64_t hi) {
            std::int64_t n = 0;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || p != value.data() + value.size() || n < lo || n > hi) {
                throw std::invalid_argument(name + " must be a whole number from " + std::to_string(lo) + " to " +
                                            std::to_string(hi));
            }
            return n;
        };
        if (name == "endpoint") {
            s.endpoint = value;
            while (s.endpoint.ends_with('/')) s.endpoint.pop_back();
            const auto scheme = s.endpoint.find("://");
            if (!(s.endpoint.starts_with("http://") || s.endpoint.starts_with("https://")) ||
                s.endpoint.find('/', scheme + 3) != std::string::npos || s.endpoint.size() <= scheme + 3) {
                throw std::invalid_argument("endpoint must be http(s)://host[:port] with no path");
            }
        } else if (name == "region") {
            if (value.empty()) throw std::invalid_argument("region is empty");
            s.region = value;
        } else if (name == "style") {
            if (value != "path" && value != "virtual") throw std::invalid_argument("style must be path or virtual");
            s.pathStyle = value == "path";
            styleGiven = true;
        } else if (name == "links") {
            if (value != "proxy" && value != "presigned") {
                throw std::invalid_argument("links must be proxy or presigned");
            }
            s.presignedLinks = value == "presigned";
        } else if (name == "link_seconds") {
            s.linkSeconds = number(1, 604800);
        } else if (name == "part_mb") {
            s.partBytes = static_cast<std::uint64_t>(number(5, 5000)) << 20;
        } else if (name == "timeout_seconds") {
            s.timeout = std::chrono::seconds(number(1, 3600));
        } else {
            throw std::invalid_argument("unknown blob store setting '" + name +
                                        "' (known: endpoint, region, style, links, link_seconds, part_mb, "
                                        "timeout_seconds)");
        }
    }
    if (s.endpoint.empty()) {
        s.endpoint = "https://s3." + s.region + ".amazonaws.com";
        if (!styleGiven) s.pathStyle = false;  // AWS itself prefers virtual-hosted buckets
    }
    auto get = [&](const char* name) {
        const char* v = env(name);
        return v == nullptr ? std::string() : std::string(v);
    };
    s.accessKey = get("AWS_ACCESS_KEY_ID");
    s.secretKey = get("AWS_SECRET_ACCESS_KEY");
    s.sessionToken = get("AWS_SESSION_TOKEN");
    if (s.accessKey.empty() || s.secretKey.empty()) {
        throw std::invalid_argument(
            "an S3 blob store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
    }
    return s;
}

std::string describeS3(const S3Settings& s) {
    return "s3://" + s.bucket + "/" + s.prefix + " at " + s.endpoint + " (" + (s.pathStyle ? "path" : "virtual") +
           "-style, region " + s.region + ", links " + (s.presignedLinks ? "pre-signed" : "through the API") + ")";
}

struct S3BlobStore::Impl {
    S3Settings settings;
    std::function<std::int64_t()> now;
    std::string scheme;     // "http" or "https"
    std::string authority;  // host[:port] as written in the endpoint
    mutable std::atomic<std::uint64_t> requests{0}, multipart{0}, failures{0};

    std::string hostHeader() const { return settings.pathStyle ? authority : settings.bucket + "." + authority; }
    std::string pathOf(const std::string& key) const {
        return settings.pathStyle ? "/" + settings.bucket + (key.empty() ? "" : "/" + key) : "/" + key;
    }
    std::string keyOf(std::int64_t owner, const std::string& name) const {
        checkBlobName(name);
        return settings.prefix + std::to_string(owner) + "/" + name;
    }
    net::AwsCredentials credentials() const { return {settings.accessKey, settings.secretKey, settings.sessionToken}; }

    net::OutboundResponse send(const std::string& method, const std::string& key,
                               std::map<std::string, std::string> query = {}, const std::string& body = {},
                               std::map<std::string, std::string> headers = {},
                               std::uint64_t maxBody = 16u << 20) const {
        net::AwsRequest r;
        r.method = method;
        r.path = pathOf(key);
        r.query = std::move(query);
        r.headers = std::move(headers);
        r.headers["host"] = hostHeader();
        if (body.empty() && (method == "PUT" || method == "POST")) r.headers["content-length"] = "0";
        r.payloadHash = net::sha256Hex(body);
        net::signAwsRequest(r, credentials(), {settings.region, "s3"}, now());

        net::OutboundRequest o;
        o.method = method;
        o.url = scheme + "://" + r.headers["host"] + net::awsUriEncode(r.path, true);
        if (!r.query.empty()) o.url += "?" + net::canonicalAwsQuery(r.query);
        o.headers = std::move(r.headers);
        o.body = body;
        o.timeout = settings.timeout;
        o.maxBody = maxBody;
        o.maxRedirects = 0;
        ++requests;
        try {
            // The endpoint is the operator's own setting, so a loopback or private address is fine here.
            return net::httpFetch(o, net::UrlPolicy{.allowPrivateAddresses = true});
        } catch (const net::OutboundError& e) {
            ++failures;
            throw std::runtime_error("S3 " + method + " " + key + ": " + e.what());
        }
    }

    [[noreturn]] void fail(const std::string& what, const net::OutboundResponse& resp) const {
        ++failures;
        const auto code = xmlFirst(resp.body, "Code");
        const auto message = xmlFirst(resp.body, "Message");
        throw std::runtime_error("S3 " + what + " failed: HTTP " + std::to_string(resp.status) +
                                 (code.empty() ? "" : " " + code) + (message.empty() ? "" : ": " + message));
    }

    struct Listed {
        std::string key;
        std::int64_t modified = 0;
    };

    // Every key under `prefix` (all pages), or with a delimiter the common prefixes. ListObjects V1
    // with markers: every S3-compatible server has it, where some (s3rver on OpenSSL 3) fail to page
    // V2's continuation tokens.
    std::vector<Listed> listKeys(const std::string& prefix, bool prefixesOnly) const {
        std::vector<Listed> out;
        std::string marker;
        for (int page = 0; page < 100000; ++page) {
            std::map<std::string, std::string> q{{"prefix", prefix}};
            if (prefixesOnly) q["delimiter"] = "/";
            if (!marker.empty()) q["marker"] = marker;
            const auto resp = send("GET", "", q);
            if (resp.status != 200) fail("listing " + prefix, resp);
            std::string last;
            for (const auto block : xmlBlocks(resp.body, "CommonPrefixes")) {
                last = xmlFirst(block, "Prefix");
                if (prefixesOnly) out.push_back({last, 0});
            }
            for (const auto block : xmlBlocks(resp.body, "Contents")) {
                last = std::max(last, xmlFirst(block, "Key"));
                if (!prefixesOnly) {
                    out.push_back({xmlFirst(block, "Key"), parseIsoTime(xmlFirst(block, "LastModified")).value_or(0)});
                }
            }
            if (xmlFirst(resp.body, "IsTruncated") != "true") break;
            auto next = xmlFirst(resp.body, "NextMarker");
            if (next.empty()) next = last;
            if (next.empty() || next == marker) break;  // no progress: stop rather than loop
            marker = next;
        }
        return out;
    }

    void putMultipart(const std::string& key, const std::vector<unsigned char>& bytes,
                      const std::map<std::string, std::string>& headers) {
        ++multipart;
        const auto created = send("POST", key, {{"uploads", ""}}, {}, headers);
        if (created.status != 200) fail("starting the multipart upload of " + key, created);
        const auto uploadId = xmlFirst(created.body, "UploadId");
        if (uploadId.empty()) fail("starting the multipart upload of " + key + " (no UploadId)", created);
        try {
            std::string complete = "<CompleteMultipartUpload>";
            const auto part = settings.partBytes;
            int number = 1;
            for (std::uint64_t at = 0; at < bytes.size(); at += part, ++number) {
                const auto size = std::min<std::uint64_t>(part, bytes.size() - at);
                const std::string body(reinterpret_cast<const char*>(bytes.data()) + at, size);
                const auto resp =
                    send("PUT", key, {{"partNumber", std::to_string(number)}, {"uploadId", uploadId}}, body);
                if (resp.status != 200) fail("uploading part " + std::to_string(number) + " of " + key, resp);
                const auto etag = resp.headers.find("etag");
                if (etag == resp.headers.end()) fail("uploading part " + std::to_string(number) + " (no ETag)", resp);
                complete += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + etag->second +
                            "</ETag></Part>";
            }
            complete += "</CompleteMultipartUpload>";
            const auto done =
                send("POST", key, {{"uploadId", uploadId}}, complete, {{"content-type", "application/xml"}});
            // S3 may answer 200 and put the error in the body (it failed after starting to answer).
            if (done.status != 200 || done.body.find("<Error>") != std::string::npos) {
                fail("completing the multipart upload of " + key, done);
            }
        } catch (...) {
            try {
                send("DELETE", key, {{"uploadId", uploadId}});  // abort: drop the parts already stored
            } catch (...) {                                     // the first failure is the one to report
            }
            throw;
        }
    }
};

S3BlobStore::S3BlobStore(S3Settings settings, std::function<std::int64_t()> now) : m_impl(std::make_unique<Impl>()) {
    m_impl->settings = std::move(settings);
    m_impl->now = now ? std::move(now) : [] { return static_cast<std::int64_t>(std::time(nullptr)); };
    const auto& endpoint = m_impl->settings.endpoint;
    const auto sep = endpoint.find("://");
    if (sep == std::string::npos) throw std::invalid_argument("endpoint must be http(s)://host[:port]");
    m_impl->scheme = endpoint.substr(0, sep);
    m_impl->authority = endpoint.substr(sep + 3);
    const auto resp = m_impl->send("HEAD", "");
    if (resp.status == 404) {
        throw std::runtime_error("the bucket " + m_impl->settings.bucket + " does not exist at " + endpoint);
    }
    if (resp.status == 403) {
        throw std::runtime_error("access to the bucket " + m_impl->settings.bucket + " at " + endpoint +
                                 " was denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the region");
    }
    if (resp.status != 200) m_impl->fail("checking the bucket " + m_impl->settings.bucket, resp);
}

S3BlobStore::~S3BlobStore() = default;

void S3BlobStore::put(std::int64_t owner, const std::string& name, const std::vector<unsigned char>& bytes) {
    const auto key = m_impl->keyOf(owner, name);
    const std::map<std::string, std::string> headers{
        {"content-type", name.ends_with(".png") ? "image/png" : "application/octet-stream"}};
    if (bytes.size() > m_impl->settings.partBytes) {
        m_impl->putMultipart(key, bytes, headers);
        return;
    }
    const auto resp = m_impl->send("PUT", key, {}, std::string(bytes.begin(), bytes.end()), headers);
    if (resp.status != 200) m_impl->fail("writing " + key, resp);
}

std::optional<std::vector<unsigned char>> S3BlobStore::get(std::int64_t owner, const std::string& name) const {
    const auto key = m_impl->keyOf(owner, name);
    const auto resp = m_impl->send("GET", key, {}, {}, {}, 1ull << 30);
    if (resp.status == 404) return std::nullopt;
    if (resp.status != 200) m_impl->fail("reading " + key, resp);
    return std::vector<unsigned char>(resp.body.begin(), resp.body.end());
}

void S3BlobStore::remove(std::int64_t owner, const std::string& name) {
    const auto key = m_impl->keyOf(owner, name);
    const auto resp = m_impl->send("DELETE", key);
    if (resp.status != 204 && resp.status != 200 && resp.status != 404) m_impl->fail("deleting " + key, resp);
}

void S3BlobStore::removeOwner(std::int64_t owner) {
    for (const auto& item : m_impl->listKeys(m_impl->settings.prefix + std::to_string(owner) + "/", false)) {
        const auto resp = m_impl->send("DELETE", item.key);
        if (resp.status != 204 && resp.status != 200 && resp.status != 404) m_impl->fail("deleting " + item.key, resp);
    }
}

std::size_t S3BlobStore::count(std::int64_t owner) const { return list(owner).size(); }

std::vector<std::int64_t> S3BlobStore::owners() const {
    std::vector<std::int64_t> out;
    const auto& prefix = m_impl->settings.prefix;
    for (const auto& item : m_impl->listKeys(prefix, true)) {
        if (!item.key.starts_with(prefix) || !item.key.ends_with('/')) continue;
        const auto id = std::string_view(item.key).substr(prefix.size(), item.key.size() - prefix.size() - 1);
        std::int64_t n = 0;
        const auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
        if (ec == std::errc() && p == id.data() + id.size()) out.push_back(n);
    }
    return out;
}

std::vector<StoredBlob> S3BlobStore::list(std::int64_t owner) const {
    std::vector<StoredBlob> out;
    const auto prefix = m_impl->settings.prefix + std::to_string(owner) + "/";
    const auto now = m_impl->now();
    for (const auto& item : m_impl->listKeys(prefix, false)) {
        const auto name = item.key.substr(prefix.size());
        if (name.empty() || name.find('/') != std::string::npos) continue;  // not a key put() writes
        out.push_back({name, item.modified > 0 ? std::max<std::int64_t>(0, now - item.modified) : 0});
    }
    return out;
}

bool S3BlobStore::hasDirectLinks() const { return m_impl->settings.presignedLinks; }

std::optional<std::string> S3BlobStore::directLink(std::int64_t owner, const std::string& name) const {
    if (!m_impl->settings.presignedLinks) return std::nullopt;
    net::AwsRequest r;
    r.method = "GET";
    r.path = m_impl->pathOf(m_impl->keyOf(owner, name));
    r.headers["host"] = m_impl->hostHeader();
    const auto query = net::presignAwsQuery(r, m_impl->credentials(), {m_impl->settings.region, "s3"}, m_impl->now(),
                                            m_impl->settings.linkSeconds);
    return m_impl->scheme + "://" + r.headers["host"] + net::awsUriEncode(r.path, true) + "?" + query;
}

std::string S3BlobStore::describe() const { return describeS3(m_impl->settings); }

S3BlobStore::Counters S3BlobStore::counters() const {
    return {m_impl->requests.load(), m_impl->multipart.load(), m_impl->failures.load()};
}

}  // namespace easel::storage
