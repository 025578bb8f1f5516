// libFuzzer: the request path as the server runs it, in process. Raw bytes go through Beast's
// request parser with the server's header and body limits, then the route table's matching and
// percent-decoding, then jsonBody() (the JSON depth check and parse) and the lenient field readers
// that every controller uses. Any crash, leak or sanitizer report is a bug; exceptions that the
// server turns into 4xx answers are expected.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/api_support.h"
#include "server/http_types.h"
#include "server/router.h"

namespace {

const easel::server::Router& routes() {
    static const easel::server::Router router = [] {
        easel::server::Router r;
        auto ok = [](const easel::server::Request&) { return easel::server::Response::json(200, {}); };
        r.add("POST", "/api/v6/images/{kind}", ok, "generate", 40u << 20);
        r.add("GET", "/images/{file}", ok, "image");
        r.add("DELETE", "/api/v1/history/{id}", ok, "delete");
        return r;
    }();
    return router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace http = boost::beast::http;
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(routes().largestBodyLimit());
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec && ec != http::error::need_more) return 0;
    parser.put_eof(ec);
    if (!parser.is_header_done()) return 0;
    const auto& msg = parser.get();
    const std::string target(msg.target());
    const auto match = routes().match(std::string(msg.method_string()), target.substr(0, target.find('?')));
    (void)match;
    easel::server::Request req;
    req.method = std::string(msg.method_string());
    req.target = target;
    req.body = msg.body();
    for (const auto& field : msg) req.headers.emplace(std::string(field.name_string()), std::string(field.value()));
    try {
        const auto body = easel::server::jsonBody(req);
        easel::server::FieldReader fields{body, {}};
        (void)fields.string("prompt");
        (void)fields.number("guidance_scale");
        (void)fields.integer("seed");
        (void)fields.boolean("base64");
        (void)easel::server::apiKeyFrom(req, body);
        (void)easel::server::bearerToken(req);
    } catch (const std::exception&) {
    }
    return 0;
}
