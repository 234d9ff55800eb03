# frozen_string_literal: true

require_relative "lib/unicorn/forksafe/version"

Gem::Specification.new do |spec|
  spec.name = "unicorn-forksafe"
  spec.version = ForkSafe::VERSION
  spec.summary = "Makes fork inside a running web server (unicorn, puma, pitchfork, Passenger, Thin) safe"
  spec.description = <<~TEXT
    A forked child inherits every client connection of the server that forked
    it, and keeps them open after the server has closed them. This gem has the
    server shut connections down before closing them, and has every forked
    child drop its references to client connections and listeners at once.
  TEXT
  spec.authors = ["unicorn-forksafe developers"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1" # Process._fork

  spec.files = Dir[
    "lib/**/*.rb",
    "ext/forksafe_native/extconf.rb",
    "ext/forksafe_native/Cargo.toml",
    "ext/forksafe_native/src/**/*.rs",
    "ext/forksafe_core/Cargo.toml",
    "ext/forksafe_core/src/**/*.rs",
    "Cargo.toml",
    "Cargo.lock",
    "README.md",
    "LICENSE"
  ]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/forksafe_native/extconf.rb"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
