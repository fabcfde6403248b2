/// Builds the JSON error bodies of docs/interface.md (`{"result":"fail","error":…,"message":…}`).
package enum HTTPErrorBody {
    /// The machine-readable error name for a status.
    package static func errorName(for status: HTTPStatus) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "invalid_signature"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 408: "request_timeout"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 431: "headers_too_large"
        case 501: "not_implemented"
        case 503: "unavailable"
        case 504: "upstream_timeout"
        default: status.code >= 500 ? "internal_error" : "bad_request"
        }
    }

    /// A complete error response.
    package static func response(_ status: HTTPStatus, error: String? = nil, message: String) -> HTTPResponse {
        .json(
            status,
            "{\"result\":\"fail\",\"error\":\"\(error ?? errorName(for: status))\",\"message\":\"\(JSONText.escaped(message))\"}")
    }
}
