// multipart/form-data parsing: what curl and the OpenAI SDKs send, and malformed bodies refused with
// a message (never a crash or a read past the body).

#include "server/multipart.h"

#include <gtest/gtest.h>

#include "common/service_error.h"

namespace easel::server {
namespace {

const std::string kType = "multipart/form-data; boundary=XyZ";

TEST(Multipart, ReadsFieldsAndFilesInOrder) {
    static const char kBody[] =
        "preamble to ignore\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
        "a cat; with \"quotes\"\r\n"
        "--XyZ\r\n"
        "content-disposition: form-data; name=\"image\"; filename=\"a \\\"b\\\".png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
        "\x89PNG\r\n\x1a\n\0bytes\r\n--XY\r\n"
        "\r\n--XyZ--\r\n"
        "epilogue";
    const std::string body(kBody, sizeof kBody - 1);  // with its NUL byte
    const auto parts = parseMultipartForm(kType, body);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].name, "prompt");
    EXPECT_EQ(parts[0].body, "a cat; with \"quotes\"");
    EXPECT_TRUE(parts[0].filename.empty());
    EXPECT_EQ(parts[1].name, "image");
    EXPECT_EQ(parts[1].filename, "a \"b\".png");
    EXPECT_EQ(parts[1].contentType, "image/png");
    // Binary content with NULs, CRLFs and a near-boundary inside is kept byte for byte.
    static const char kFile[] = "\x89PNG\r\n\x1a\n\0bytes\r\n--XY\r\n";
    EXPECT_EQ(parts[1].body, std::string(kFile, sizeof kFile - 1));
}

TEST(Multipart, TheBoundaryMayBeQuotedAndTheTypeAnyCase) {
    const std::string body = "--a b\r\nContent-Disposition: form-data; name=n\r\n\r\n2\r\n--a b--";
    EXPECT_TRUE(isMultipartForm("Multipart/Form-Data ; boundary=\"a b\""));
    const auto parts = parseMultipartForm("Multipart/Form-Data; boundary=\"a b\"", body);
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].name, "n");
    EXPECT_EQ(parts[0].body, "2");
    EXPECT_FALSE(isMultipartForm("application/json"));
}

TEST(Multipart, MalformedBodiesAreRefusedWithAReason) {
    const auto refused = [](const std::string& type, const std::string& body, const std::string& reason) {
        try {
            parseMultipartForm(type, body, 2);
            ADD_FAILURE() << "accepted: " << body;
        } catch (const ServiceError& e) {
            EXPECT_EQ(e.code(), ErrorCode::BadRequest);
            EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
        }
    };
    const std::string part = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n";
    refused("multipart/form-data", part + "--XyZ--", "no usable boundary");
    refused("text/plain; boundary=XyZ", part + "--XyZ--", "not multipart/form-data");
    refused(kType, "nothing here", "never occurs");
    refused(kType, part, "closing boundary is missing");
    refused(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n", "headers never end");
    refused(kType, "--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--", "has no name");
    refused(kType, "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--XyZ--", "not form-data");
    refused(kType, "--XyZ\r\nno colon\r\n\r\nv\r\n--XyZ--", "no ':'");
    refused(kType, "--XyZjunk", "not followed by a line break");
    refused(kType, part + part + part + "--XyZ--", "more than 2 parts");
    // Every prefix of a valid body is refused or parsed, never read past.
    const std::string whole = part + part + "--XyZ--";
    for (std::size_t n = 0; n < whole.size(); ++n) {
        try {
            parseMultipartForm(kType, std::string_view(whole.data(), n));
        } catch (const ServiceError&) {
        }
    }
}

}  // namespace
}  // namespace easel::server
