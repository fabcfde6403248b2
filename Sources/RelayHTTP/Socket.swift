import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// A `HOST:PORT` pair as users write it (`127.0.0.1:8080`, `[::1]:0`, `localhost:80`).
package struct HostAndPort: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; IPv6 hosts are bracketed. Nil when malformed or the port is out of range.
    package init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let port = Int(portText), (0...65535).contains(port)
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A resolved socket address.
struct SocketAddress: @unchecked Sendable, Equatable {
    var storage = sockaddr_storage()
    var length = socklen_t(0)

    var family: Int32 { Int32(storage.ss_family) }

    /// The same family, address and port (the bytes `length` covers).
    static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        guard lhs.length == rhs.length else { return false }
        return withUnsafeBytes(of: lhs.storage) { left in
            withUnsafeBytes(of: rhs.storage) { right in memcmp(left.baseAddress!, right.baseAddress!, Int(lhs.length)) == 0 }
        }
    }

    /// Resolves a host and port; numeric hosts never touch DNS.
    static func resolve(_ target: HostAndPort) throws(SystemError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0, let first = list else {
            throw SystemError(code: status == EAI_SYSTEM ? errno : EHOSTUNREACH, call: "getaddrinfo \(target.host)")
        }
        defer { freeaddrinfo(list) }
        var result: [SocketAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            var address = SocketAddress()
            withUnsafeMutableBytes(of: &address.storage) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(start: current.pointee.ai_addr, count: Int(current.pointee.ai_addrlen)))
            }
            address.length = current.pointee.ai_addrlen
            result.append(address)
            node = current.pointee.ai_next
        }
        return result
    }

    /// A numeric IPv4 or IPv6 host with its port, parsed without any lookup; nil for a name.
    static func numeric(_ target: HostAndPort) -> SocketAddress? {
        let port = in_port_t(UInt16(truncatingIfNeeded: target.port).bigEndian)
        var ipv4 = sockaddr_in()
        if inet_pton(AF_INET, target.host, &ipv4.sin_addr) == 1 {
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = port
            return holding(ipv4)
        }
        var ipv6 = sockaddr_in6()
        if inet_pton(AF_INET6, target.host, &ipv6.sin6_addr) == 1 {
            ipv6.sin6_family = sa_family_t(AF_INET6)
            ipv6.sin6_port = port
            return holding(ipv6)
        }
        return nil
    }

    /// An address holding a `sockaddr_in` or `sockaddr_in6`.
    private static func holding<Address>(_ value: Address) -> SocketAddress {
        var address = SocketAddress()
        withUnsafeMutableBytes(of: &address.storage) { raw in
            withUnsafeBytes(of: value) { raw.copyMemory(from: $0) }
        }
        address.length = socklen_t(MemoryLayout<Address>.size)
        return address
    }

    /// The address as users write it: `203.0.113.5:443`, `[2001:db8::1]:443`.
    var text: String {
        var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafeBytes(of: storage) { raw in
            let offset = family == AF_INET6 ? MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)! : MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!
            _ = inet_ntop(family, raw.baseAddress! + offset, &host, socklen_t(host.count))
        }
        return HostAndPort(host: String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: port).description
    }

    /// The port of an `AF_INET`/`AF_INET6` address.
    var port: Int {
        withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port sit at the same offset, in network byte order.
            Int(UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self)))
        }
    }

    func withSockAddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

enum SocketFactory {
    /// A non-blocking listening socket bound to `address`; returns it with the port really bound.
    static func listen(on address: HostAndPort, backlog: Int32 = 1024) throws(SystemError) -> (fd: Int32, port: Int) {
        guard let resolved = try SocketAddress.resolve(address).first else {
            throw SystemError(code: EADDRNOTAVAIL, call: "resolve")
        }
        let fd = try Syscall.check("socket") {
            socket(resolved.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do throws(SystemError) {
            var one: Int32 = 1
            _ = try Syscall.check("setsockopt") {
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            _ = try Syscall.check("bind") { resolved.withSockAddr { bind(fd, $0, $1) } }
            _ = try Syscall.check("listen") { Glibc.listen(fd, backlog) }
            var bound = SocketAddress()
            bound.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = try Syscall.check("getsockname") {
                withUnsafeMutableBytes(of: &bound.storage) { raw in
                    getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &bound.length)
                }
            }
            return (fd, bound.port)
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// Starts a non-blocking connect; returns the socket, connected or in progress.
    static func connect(to address: SocketAddress) throws(SystemError) -> Int32 {
        let fd = try Syscall.check("socket") {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if result < 0 {
            let code = errno
            if code != EINPROGRESS && code != EINTR {
                Syscall.close(fd)
                throw SystemError(code: code, call: "connect")
            }
        }
        return fd
    }

    /// The pending error of a socket whose non-blocking connect finished (0 when connected).
    static func pendingError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return code
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
