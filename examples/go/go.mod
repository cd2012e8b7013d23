module example.invalid/exitpool-example

go 1.19
