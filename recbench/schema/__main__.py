"""``python -m recbench.schema``: regenerate ``result_row.schema.json``."""

from recbench.schema import write_result_row_schema

if __name__ == "__main__":
    print(write_result_row_schema())
