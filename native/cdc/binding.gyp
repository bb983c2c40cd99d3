{
  "targets": [
    {
      "target_name": "cdc",
      "sources": ["cdc.c"],
      "cflags!": ["-O2", "-Os", "-O0"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra"]
    }
  ]
}
