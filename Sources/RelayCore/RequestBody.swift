import FoundationEssentials
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
    /// it, a form; anything else is refused. A JSON body is validated whole and kept on a tape:
    /// paths read only what they need from it.
    package static func decode(_ bytes: [UInt8], contentType: String?, acceptsForm: Bool) -> Result<JSONValue, Problem> {
        let mediaType = contentType.map(Self.mediaType(of:))
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
            return .success(.tape(try JSONParser(maxDepth: 64, maxBytes: 16 << 20).tape(bytes).root))
        } catch {
            return .failure(.invalidJSON(error.description))
        }
    }

    /// The media type of a Content-Type value: before any `;`, trimmed, lower-cased.
    static func mediaType(of contentType: String) -> String {
        // As most senders write it (`application/json`: printable, lower-case, no parameters),
        // the value is its own media type, and is not copied twice to find that out.
        if contentType.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") && !($0 >= 0x41 && $0 <= 0x5A) }) {
            return contentType
        }
        let end = contentType.utf8.firstIndex(of: UInt8(ascii: ";")) ?? contentType.endIndex
        return contentType[..<end].trimmingWhitespace().lowercased()
    }
}
