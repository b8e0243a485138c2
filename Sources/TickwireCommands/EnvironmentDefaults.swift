import ArgumentParser

/// Fills options absent from the command line from the environment: `--jwt-secret`
/// reads `TICKWIRE_JWT_SECRET`. Options are discovered from the subcommand's own
/// declarations, so a new option is covered without being listed anywhere.
enum EnvironmentDefaults {
    /// Conventional variables that stand in for an option when its TICKWIRE_ variable is unset.
    static let aliases: [String: [String]] = [
        "redis-url": ["REDIS_URL"],
        "secret": ["TICKWIRE_JWT_SECRET"],
    ]

    /// Options that exclude each other: an environment default is not applied when the
    /// command line already chose the other one (`publish --url` with REDIS_URL set).
    static let exclusive: [String: [String]] = [
        "redis-url": ["url"],
        "url": ["redis-url"],
    ]

    static func apply(to arguments: [String], environment: [String: String]) -> [String] {
        guard let commandName = arguments.first(where: { !$0.hasPrefix("-") }),
            let command = Tickwire.configuration.subcommands.first(where: {
                $0.configuration.commandName == commandName || $0._commandName == commandName
            })
        else { return arguments }
        var result = arguments
        func onCommandLine(_ name: String) -> Bool {
            arguments.contains { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") }
        }
        for option in options(of: command) {
            guard !onCommandLine(option.name), !(exclusive[option.name] ?? []).contains(where: onCommandLine) else { continue }
            let names = ["TICKWIRE_" + option.name.uppercased().replacingOccurrences("-", with: "_")]
                + (aliases[option.name] ?? [])
            guard let value = names.lazy.compactMap({ environment[$0] }).first else { continue }
            if option.isFlag {
                if ["1", "true", "yes", "on"].contains(value.lowercased()) { result.append("--\(option.name)") }
            } else {
                result.append("--\(option.name)=\(value)")
            }
        }
        return result
    }

    struct DeclaredOption {
        var name: String
        var isFlag: Bool
    }

    /// The long names of a command's `@Option`s and `@Flag`s, read off a default instance, and those of
    /// its option groups.
    static func options(of command: ParsableArguments.Type) -> [DeclaredOption] {
        let groups = (command as? OptionGroups.Type)?.optionGroups ?? []
        return declaredOptions(of: command) + groups.flatMap { declaredOptions(of: $0) }
    }

    static func declaredOptions(of command: ParsableArguments.Type) -> [DeclaredOption] {
        let instance = command.init()
        return Mirror(reflecting: instance).children.compactMap { child in
            guard let label = child.label, label.hasPrefix("_") else { return nil }
            let typeName = String(describing: type(of: child.value))
            let isFlag = typeName.hasPrefix("Flag<")
            guard isFlag || typeName.hasPrefix("Option<") else { return nil }
            return DeclaredOption(name: kebabCase(String(label.dropFirst())), isFlag: isFlag)
        }
    }

    /// ArgumentParser's default long name: `jwtPublicKey` -> `jwt-public-key`, `redisURL` -> `redis-url`,
    /// `maxHTTPBody` -> `max-http-body` (a run of capitals is one word).
    static func kebabCase(_ name: String) -> String {
        let characters = Array(name)
        var result = ""
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0 {
                let previous = characters[index - 1]
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && next?.isLowercase == true) {
                    result.append("-")
                }
            }
            result.append(Character(character.lowercased()))
        }
        return result
    }
}

extension String {
    func replacingOccurrences(_ target: Character, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// A command whose `@OptionGroup`s hold options too (reflection does not look inside them).
protocol OptionGroups {
    static var optionGroups: [ParsableArguments.Type] { get }
}
