pub mod ctf;
