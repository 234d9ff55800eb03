# frozen_string_literal: true

require "open3"

# bin/demo as a newcomer runs it (one server, short-lived children, to keep
# the suite quick): every situation fixed or not affected, and the table
# written as Markdown.
RSpec.describe "bin/demo", :e2e do
  it "shows each puma situation fixed by the gem, exits 0 and writes the Markdown table" do
    Dir.mktmpdir("forksafe-demo") do |dir|
      markdown = File.join(dir, "demo.md")
      out, status = Open3.capture2e(File.expand_path("../../bin/demo", __dir__),
                                    "--server", "puma", "--life", "3", "--markdown", markdown)
      expect(status).to be_success, out
      rows = File.readlines(markdown).drop(2)
      expect(rows.size).to eq(5)
      expect(rows).to all(end_with("| fixed |\n"))
      expect(out).to include("without the gem:", "with the gem:")
    end
  end

  it "rejects an unknown server with a message naming it" do
    out, status = Open3.capture2e(File.expand_path("../../bin/demo", __dir__), "--server", "thin")
    expect(status.exitstatus).to eq(1)
    expect(out).to include("invalid argument: --server thin")
  end
end
