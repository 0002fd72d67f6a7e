// Plain-text tables for `--output table`: a header row and left-aligned columns separated by two
// spaces, sized to the widest cell (byte length; callmesh's cells are ASCII).
//
//   Table table({"CID", "STATE"});
//   table.AddRow({cid, "SUCCEEDED"});
//   std::cout << table.Render();
//
// Not thread-safe; a value type.
#pragma once

#include <string>
#include <vector>

namespace callmesh::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}

  // Adds a row; missing cells are blank, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  // The header and every row, each line ending in '\n' (trailing spaces trimmed).
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace callmesh::cli
