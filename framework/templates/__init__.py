"""Templates of `framework new`: `project/` (files of every new project; `dot-` names become
dotfiles) and, in the wheel, `shop/` (the shop example, this repository's own project files,
mapped here at build time by pyproject.toml so there is one copy of them)."""
