// Return-if-error and assign-or-return for absl::Status / absl::StatusOr (Abseil 20220623 has
// none of its own).
//
//   absl::StatusOr<Config> Load(const std::string& path) {
//     CALLMESH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     CALLMESH_RETURN_IF_ERROR(Check(text));
//     ...
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CALLMESH_STATUS_CONCAT_INNER_(a, b) a##b
#define CALLMESH_STATUS_CONCAT_(a, b) CALLMESH_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing function if not OK.
#define CALLMESH_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    const ::absl::Status callmesh_status_ = (expr);      \
    if (!callmesh_status_.ok()) return callmesh_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status if not OK, else moves the value
// into `lhs` (a declaration such as `auto x` or an existing variable).
#define CALLMESH_ASSIGN_OR_RETURN(lhs, rexpr) \
  CALLMESH_ASSIGN_OR_RETURN_IMPL_(CALLMESH_STATUS_CONCAT_(callmesh_statusor_, __LINE__), lhs, rexpr)

#define CALLMESH_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  if (!statusor.ok()) return statusor.status();               \
  lhs = std::move(statusor).value()
