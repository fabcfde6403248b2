import Foundation
import RelayMapping

/// Turning a request body into the document's `$.body`.
package enum RequestBody {
    /// Why a body was refused, and the answer it gets.
    package enum Problem: Error, Equatable {
        case invalidJSON(String)
        case unsupportedMediaType(String)

        package var message: String {
            switch self {
            case .invalidJSON(let detail): "body is not valid JSON: \(detail)"
            case .unsupportedMediaType(let type): "Content-Type \(type) is not accepted by this route"
            }
        }
    }

    /// JSON (`application/json`, `*/*+json`, or no Content-Type) or, where the route accepts
    /// it, a form; anything else is refused.
    package static func decode(
        _ bytes: [UInt8], contentType: String?, acceptsForm: Bool, keeping projection: JSONProjection? = nil
    ) -> Result<JSONValue, Problem> {
        let mediaType = contentType.map { $0.split(separator: ";").first.map(String.init) ?? "" }?
            .trimmingCharacters(in: .whitespaces).lowercased()
        switch mediaType {
        case nil, "application/json", "text/json":
            break
        case let type? where type.hasSuffix("+json"):
            break
        case "application/x-www-form-urlencoded" where acceptsForm:
            return .success(FormBody.object(bytes))
        case let type?:
            return .failure(.unsupportedMediaType(type))
        }
        do {
            return .success(try JSONParser(maxDepth: 64, maxBytes: 16 << 20).parse(bytes, keeping: projection ?? .everything))
        } catch {
            return .failure(.invalidJSON(error.description))
        }
    }

    /// RFC 3339 in UTC with milliseconds.
    package static func timestamp(_ date: Date) -> String {
        RFC3339.timestamp(milliseconds: Int((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
