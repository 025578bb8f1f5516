// SigV4 against known answers: the two examples of the S3 documentation ("Signature Calculations for
// the Authorization Header" GET with Range, and "Authenticating Requests: Using Query Parameters"),
// and two path-style requests of the shape the blob store sends (a key with a blank, a listing with
// an encoded continuation token), whose signatures botocore 1.29 computed for the same inputs.

#include <gtest/gtest.h>

#include "net/aws_sigv4.h"

namespace easel::net {
namespace {

const AwsCredentials kExample{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr std::int64_t k20130524 = 1369353600;  // Fri, 24 May 2013 00:00:00 GMT
const std::string kEmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(AwsSigV4, Sha256AndDateFormatting) {
    EXPECT_EQ(sha256Hex(""), kEmptyHash);
    EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(amzDate(k20130524), "20130524T000000Z");
    EXPECT_EQ(amzDate(1764952935), "20251205T164215Z");
}

TEST(AwsSigV4, UriEncodingKeepsOnlyUnreservedCharacters) {
    EXPECT_EQ(awsUriEncode("a-b_c.d~e/f g+h=i&j%k", true), "a-b_c.d~e/f%20g%2Bh%3Di%26j%25k");
    EXPECT_EQ(awsUriEncode("a/b", false), "a%2Fb");
    EXPECT_EQ(awsUriEncode("\xC3\xA9", false), "%C3%A9");  // UTF-8 bytes, upper-case hex
    EXPECT_EQ(canonicalAwsQuery({{"uploads", ""}, {"prefix", "a/b c"}, {"list-type", "2"}}),
              "list-type=2&prefix=a%2Fb%20c&uploads=");
}

TEST(AwsSigV4, TheS3DocumentationsHeaderExample) {
    AwsRequest r;
    r.method = "GET";
    r.path = "/test.txt";
    r.headers = {{"host", "examplebucket.s3.amazonaws.com"}, {"range", "bytes=0-9"}};
    r.payloadHash = kEmptyHash;
    const auto canonical = signAwsRequest(r, kExample, {"us-east-1", "s3"}, k20130524);
    EXPECT_EQ(
        canonical,
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:" + kEmptyHash +
            "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n" + kEmptyHash);
    EXPECT_EQ(r.headers.at("authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    EXPECT_EQ(r.headers.at("x-amz-date"), "20130524T000000Z");

    // Signing again (a retry) replaces the signature instead of signing the old one.
    signAwsRequest(r, kExample, {"us-east-1", "s3"}, k20130524);
    EXPECT_NE(r.headers.at("authorization").find("Signature=f0e8bdb8"), std::string::npos);
}

TEST(AwsSigV4, TheS3DocumentationsPresignedExample) {
    AwsRequest r;
    r.method = "GET";
    r.path = "/test.txt";
    r.headers = {{"host", "examplebucket.s3.amazonaws.com"}};
    EXPECT_EQ(presignAwsQuery(r, kExample, {"us-east-1", "s3"}, k20130524, 86400),
              "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%"
              "2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-"
              "Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(AwsSigV4, PathStylePutOfAKeyWithABlankMatchesBotocore) {
    AwsRequest r;
    r.method = "PUT";
    r.path = "/easel-test/easel/7/img a.png";
    r.headers = {{"host", "127.0.0.1:9000"}, {"content-type", "image/png"}};
    r.payloadHash = sha256Hex("hello png");
    EXPECT_EQ(r.payloadHash, "5bc494a2cafaacdffa2947f392085def80d4bc792fa7650dee34a3d48a0a1f0a");
    const auto canonical = signAwsRequest(r, kExample, {"us-east-1", "s3"}, k20130524);
    EXPECT_TRUE(canonical.starts_with("PUT\n/easel-test/easel/7/img%20a.png\n\ncontent-type:image/png\n")) << canonical;
    EXPECT_NE(r.headers.at("authorization")
                  .find("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,Signature="
                        "5d619b373f100376b8f2be60162a802bc536449251962d1ca624496206e47247"),
              std::string::npos)
        << r.headers.at("authorization");
}

TEST(AwsSigV4, AListingWithAnEncodedContinuationTokenMatchesBotocore) {
    AwsRequest r;
    r.method = "GET";
    r.path = "/easel-test";
    r.query = {{"list-type", "2"}, {"prefix", "easel/7/"}, {"continuation-token", "a+b="}};
    r.headers = {{"host", "127.0.0.1:9000"}};
    r.payloadHash = kEmptyHash;
    const auto canonical = signAwsRequest(r, kExample, {"us-east-1", "s3"}, k20130524);
    EXPECT_NE(canonical.find("\ncontinuation-token=a%2Bb%3D&list-type=2&prefix=easel%2F7%2F\n"), std::string::npos)
        << canonical;
    EXPECT_NE(r.headers.at("authorization")
                  .find("Signature=f4a948c12554181a287ec1fc3a6129b57d93b18af78159d9ffb2865bb67a532f"),
              std::string::npos)
        << r.headers.at("authorization");
}

TEST(AwsSigV4, TemporaryCredentialsSendAndSignTheirToken) {
    AwsRequest r;
    r.path = "/b/k";
    r.headers = {{"host", "h"}};
    r.payloadHash = kEmptyHash;
    auto withToken = kExample;
    withToken.sessionToken = "token/123";
    const auto canonical = signAwsRequest(r, withToken, {}, k20130524);
    EXPECT_EQ(r.headers.at("x-amz-security-token"), "token/123");
    EXPECT_NE(canonical.find("x-amz-security-token:token/123\n"), std::string::npos);
    EXPECT_NE(r.headers.at("authorization").find("x-amz-date;x-amz-security-token,"), std::string::npos);
    const auto query = presignAwsQuery(r, withToken, {}, k20130524, 60);
    EXPECT_NE(query.find("X-Amz-Security-Token=token%2F123"), std::string::npos) << query;
}

}  // namespace
}  // namespace easel::net
