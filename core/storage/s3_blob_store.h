#pragma once
// Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, Cloudflare R2, ...), so that
// several easel-server machines share images and uploads. Objects are keyed <prefix><owner>/<name>,
// so that an account's files are one prefix. Requests are signed with SigV4 (net/aws_sigv4.h);
// path-style addressing by default (what self-hosted servers expect), virtual-hosted on request.
// Blobs above the part size go up as a multipart upload (aborted on failure, so that no part is
// left behind). Image links are either served through the API (proxy, the default) or answered
// with a redirect to a short-lived pre-signed URL.
//
// Chosen by a URL:  s3://BUCKET[/PREFIX]?endpoint=http://127.0.0.1:9000&region=us-east-1
//                       &style=path|virtual&links=proxy|presigned&link_seconds=3600&part_mb=16
// Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for temporary
// ones, AWS_SESSION_TOKEN), never from the URL, so that they stay out of logs and `ps`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "storage/blob_store.h"

namespace easel::storage {

struct S3Settings {
    std::string endpoint;  // scheme://host[:port], no path; empty: https://s3.<region>.amazonaws.com
    std::string bucket;
    std::string prefix;  // "" or ending in '/'
    std::string region = "us-east-1";
    bool pathStyle = true;
    bool presignedLinks = false;
    std::int64_t linkSeconds = 3600;      // how long a pre-signed link stays valid (S3 allows up to 7 days)
    std::uint64_t partBytes = 16u << 20;  // multipart above this size, in parts of this size (>= 5 MiB on AWS)
    std::string accessKey;
    std::string secretKey;
    std::string sessionToken;
    std::chrono::milliseconds timeout{60'000};  // per request
};

bool isS3Url(const std::string& url);
// Reads an s3:// URL (see above) and the credentials from `env` (getenv by default). Throws
// std::invalid_argument with a message naming the bad part.
S3Settings parseS3Url(
    const std::string& url,
    const std::function<const char*(const char*)>& env = [](const char* n) { return std::getenv(n); });
// The URL without anything secret, for logs (it never holds credentials, but say so in one place).
std::string describeS3(const S3Settings& settings);

class S3BlobStore final : public BlobStore {
public:
    // Checks that the bucket answers (HEAD); throws std::runtime_error with S3's reason otherwise.
    // `now` gives the signing time (tests pass a fixed clock).
    explicit S3BlobStore(S3Settings settings, std::function<std::int64_t()> now = {});
    ~S3BlobStore() override;

    void put(std::int64_t owner, const std::string& name, const std::vector<unsigned char>& bytes) override;
    std::optional<std::vector<unsigned char>> get(std::int64_t owner, const std::string& name) const override;
    void remove(std::int64_t owner, const std::string& name) override;
    void removeOwner(std::int64_t owner) override;
    std::size_t count(std::int64_t owner) const override;
    std::vector<std::int64_t> owners() const override;
    std::vector<StoredBlob> list(std::int64_t owner) const override;
    bool hasDirectLinks() const override;
    std::optional<std::string> directLink(std::int64_t owner, const std::string& name) const override;
    std::string describe() const override;

    // Requests made so far, by kind, and multipart uploads started (for tests and /metrics).
    struct Counters {
        std::uint64_t requests = 0;
        std::uint64_t multipartUploads = 0;
        std::uint64_t failures = 0;
    };
    Counters counters() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace easel::storage
